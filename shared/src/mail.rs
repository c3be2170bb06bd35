//! Mail through Amazon SES: invitations, verification, password reset and security notices.
//!
//! - [`Brand`]: a tenant's name, logo and colour (`configuration.branding`),
//!   what every mail of the tenant wears.
//! - [`Notice`]: the mails there are, each rendered by [`Notice::render`] into
//!   a [`Mail`] with a plain-text and an HTML part; every value interpolated
//!   into the HTML is escaped.
//! - [`Mailer`]: sends a [`Mail`] with SES v2 `SendEmail` from `MAIL_FROM`,
//!   builds links under `APP_BASE_URL`, and [`Mailer::deliver`] is the
//!   best-effort send every flow uses after its write committed.
//!
//! Why best effort, and why not through the outbox: a mail here carries a
//! one-time secret (a reset, verification or invitation link). The outbox
//! publishes to the bus, where webhook subscribers and the event log would
//! see it; so the mail is sent by the request itself, after its change
//! committed, and a failed send is logged (with the request id, never the
//! link) instead of failing a change that already happened. The user asks
//! again (forgot password, resend verification, the admin resends an
//! invitation); each new token replaces the last.

use std::fmt::Write as _;

use crate::{aws::SesClient, domain::tenant::Tenant};

/// A rendered mail for one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Bodies hold one-time links: never printed, not even in a debug log.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// The colour of buttons and headings when the tenant chose none.
pub const DEFAULT_COLOR: &str = "#1a365d";

/// What a tenant's mails look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// The tenant's name: the sender people recognise.
    pub name: String,
    /// An http(s) URL, or none.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub primary_color: String,
}

impl Brand {
    /// The tenant's `configuration.branding` (`logo_url`, `primary_color`),
    /// falling back to the tenant's own `logo_url` and [`DEFAULT_COLOR`].
    /// Values are re-checked here: a configuration stored before its rules
    /// existed must not reach the HTML unchecked.
    pub fn of(tenant: &Tenant) -> Self {
        let branding = tenant.configuration.get("branding");
        let field = |name: &str| branding.and_then(|b| b.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
        let logo_url = field("logo_url").or_else(|| tenant.logo_url.clone()).filter(|u| is_http_url(u));
        let primary_color = field("primary_color").filter(|c| is_hex_color(c)).unwrap_or_else(|| DEFAULT_COLOR.into());
        Self { name: tenant.name.clone(), logo_url, primary_color }
    }

    /// For a mail whose tenant could not be read.
    pub fn platform() -> Self {
        Self { name: "SaaS Platform".into(), logo_url: None, primary_color: DEFAULT_COLOR.into() }
    }
}

fn is_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_http_url(value: &str) -> bool {
    (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `value` safe inside HTML text and double- or single-quoted attributes.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

/// The web app's page that asks for a reset link: notices of a change to
/// an account point there ("if this was not you").
pub const FORGOT_PAGE: &str = "forgot-password";

/// The mails there are. Links are complete URLs ([`Mailer::link`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Notice {
    /// Someone was invited to the tenant; `link` accepts.
    Invitation { role: String, link: String, valid_days: i64 },
    /// A new account's address is to be proven; `link` verifies it.
    Verification { first_name: String, link: String, valid_hours: i64 },
    /// Someone asked to reset the account's password; `link` sets a new one.
    PasswordReset { first_name: String, link: String, valid_minutes: i64 },
    /// The password was changed through a reset; every sign-in was ended.
    PasswordChanged { first_name: String, forgot_link: String },
    /// Sign-ins were paused after repeated failed attempts.
    Lockout { first_name: String, minutes: i64, forgot_link: String },
    /// Two-step sign-in was turned on or off (or its backup codes renewed).
    MfaChanged { first_name: String, change: MfaChange, forgot_link: String },
}

/// What changed in a user's two-step sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaChange {
    Enabled,
    Disabled,
    BackupCodesRenewed,
    /// An admin turned it off for the member (a lost authenticator).
    ResetByAdmin,
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// One mail's words, before layout.
struct Words {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    action: Option<(String, String)>,
    note: String,
}

impl Notice {
    /// A stable name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Invitation { .. } => "invitation",
            Notice::Verification { .. } => "email_verification",
            Notice::PasswordReset { .. } => "password_reset",
            Notice::PasswordChanged { .. } => "password_changed",
            Notice::Lockout { .. } => "sign_in_lockout",
            Notice::MfaChanged { .. } => "mfa_changed",
        }
    }

    fn words(&self, brand: &Brand) -> Words {
        let tenant = &brand.name;
        let hello = |name: &str| if name.trim().is_empty() { "Hello,".to_owned() } else { format!("Hello {name},") };
        let unasked = "If you did not ask for this, you can ignore this message.".to_owned();
        match self {
            Notice::Invitation { role, link, valid_days } => Words {
                subject: format!("You are invited to join {tenant}"),
                heading: format!("Join {tenant}"),
                paragraphs: vec![
                    "Hello,".into(),
                    format!("You have been invited to join {tenant} as {}.", article(role)),
                    format!("The invitation is valid for {valid_days} days and can be used once."),
                ],
                action: Some(("Accept the invitation".into(), link.clone())),
                note: "If you did not expect this invitation, you can ignore this message.".into(),
            },
            Notice::Verification { first_name, link, valid_hours } => Words {
                subject: format!("Confirm your email address for {tenant}"),
                heading: "Confirm your email address".into(),
                paragraphs: vec![
                    hello(first_name),
                    format!("Please confirm that this address belongs to your {tenant} account."),
                    format!("The link is valid for {valid_hours} hours and can be used once."),
                ],
                action: Some(("Confirm my address".into(), link.clone())),
                note: unasked,
            },
            Notice::PasswordReset { first_name, link, valid_minutes } => Words {
                subject: format!("Reset your {tenant} password"),
                heading: "Reset your password".into(),
                paragraphs: vec![
                    hello(first_name),
                    format!("Someone asked to reset the password of your {tenant} account."),
                    format!(
                        "The link is valid for {valid_minutes} minutes and can be used once. Setting a new \
                         password signs you out everywhere."
                    ),
                ],
                action: Some(("Choose a new password".into(), link.clone())),
                note: "If you did not ask for this, you can ignore this message: your password stays as it is.".into(),
            },
            Notice::PasswordChanged { first_name, forgot_link } => Words {
                subject: format!("Your {tenant} password was changed"),
                heading: "Your password was changed".into(),
                paragraphs: vec![
                    hello(first_name),
                    format!(
                        "The password of your {tenant} account was just changed, and every device signed in \
                         to it was signed out."
                    ),
                    "If this was not you, reset your password now and tell your administrator.".into(),
                ],
                action: Some(("Reset my password".into(), forgot_link.clone())),
                note: "You receive this notice for every password change.".into(),
            },
            Notice::Lockout { first_name, minutes, forgot_link } => Words {
                subject: format!("Sign-ins to your {tenant} account were paused"),
                heading: "Sign-ins paused".into(),
                paragraphs: vec![
                    hello(first_name),
                    format!(
                        "After repeated failed attempts, sign-ins to your {tenant} account are paused for \
                         {minutes} minutes."
                    ),
                    "If these attempts were not yours, someone may be guessing your password: choose a new \
                     one."
                        .into(),
                ],
                action: Some(("Reset my password".into(), forgot_link.clone())),
                note: "You receive this notice each time sign-ins are paused.".into(),
            },
            Notice::MfaChanged { first_name, change, forgot_link } => {
                let what = match change {
                    MfaChange::Enabled => "was turned on",
                    MfaChange::Disabled => "was turned off",
                    MfaChange::BackupCodesRenewed => "got new backup codes (the old ones no longer work)",
                    MfaChange::ResetByAdmin => {
                        "was turned off by an administrator of your organization, and your sign-ins were ended; \
                         set it up again after you sign in"
                    }
                };
                Words {
                    subject: format!(
                        "Two-step sign-in {} for your {tenant} account",
                        match change {
                            MfaChange::Enabled => "turned on",
                            MfaChange::Disabled => "turned off",
                            MfaChange::BackupCodesRenewed => "backup codes renewed",
                            MfaChange::ResetByAdmin => "reset by an administrator",
                        }
                    ),
                    heading: "Two-step sign-in changed".into(),
                    paragraphs: vec![
                        hello(first_name),
                        format!("Two-step sign-in for your {tenant} account {what}."),
                        "If this was not you, reset your password now and tell your administrator.".into(),
                    ],
                    action: Some(("Reset my password".into(), forgot_link.clone())),
                    note: "You receive this notice for every change of your sign-in settings.".into(),
                }
            }
        }
    }

    /// The mail to `to`, in `brand`'s colours: plain text and HTML with the
    /// same words; the HTML escapes every value it interpolates.
    pub fn render(&self, brand: &Brand, to: &str) -> Mail {
        let words = self.words(brand);
        Mail {
            to: to.to_owned(),
            subject: words.subject.clone(),
            text: text_part(&words, brand),
            html: html_part(&words, brand),
        }
    }
}

/// "an admin", "a user".
fn article(role: &str) -> String {
    let vowel = role.chars().next().is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {role}", if vowel { "an" } else { "a" })
}

fn text_part(words: &Words, brand: &Brand) -> String {
    let mut out = format!("{}\n\n", words.heading);
    for paragraph in &words.paragraphs {
        let _ = writeln!(out, "{paragraph}\n");
    }
    if let Some((label, url)) = &words.action {
        let _ = writeln!(out, "{label}:\n{url}\n");
    }
    let _ = writeln!(out, "{}\n\n-- \n{}", words.note, brand.name);
    out
}

fn html_part(words: &Words, brand: &Brand) -> String {
    let color = escape_html(&brand.primary_color);
    let name = escape_html(&brand.name);
    let mut out = String::with_capacity(2048);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
    let _ = writeln!(out, "<title>{}</title></head>", escape_html(&words.subject));
    out.push_str("<body style=\"margin:0;padding:24px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1f2933\">\n");
    out.push_str("<table role=\"presentation\" width=\"100%\" style=\"max-width:560px;margin:0 auto;background:#ffffff;border-radius:6px\">\n");
    let _ = write!(out, "<tr><td style=\"padding:24px;border-top:4px solid {color}\">");
    match &brand.logo_url {
        Some(logo) => {
            let _ = write!(out, "<img src=\"{}\" alt=\"{name}\" style=\"max-height:48px\">", escape_html(logo));
        }
        None => {
            let _ = write!(out, "<strong style=\"font-size:18px;color:{color}\">{name}</strong>");
        }
    }
    out.push_str("</td></tr>\n<tr><td style=\"padding:0 24px 24px\">\n");
    let _ = writeln!(out, "<h1 style=\"font-size:22px;color:{color}\">{}</h1>", escape_html(&words.heading));
    for paragraph in &words.paragraphs {
        let _ = writeln!(out, "<p style=\"line-height:1.5\">{}</p>", escape_html(paragraph));
    }
    if let Some((label, url)) = &words.action {
        let url = escape_html(url);
        let _ = writeln!(
            out,
            "<p><a href=\"{url}\" style=\"display:inline-block;padding:12px 20px;background:{color};color:#ffffff;\
             text-decoration:none;border-radius:4px\">{}</a></p>",
            escape_html(label)
        );
        let _ = writeln!(
            out,
            "<p style=\"font-size:12px;color:#52606d\">Or paste this address into your browser: {url}</p>"
        );
    }
    let _ = writeln!(out, "<p style=\"font-size:12px;color:#52606d\">{}</p>", escape_html(&words.note));
    out.push_str("</td></tr>\n");
    let _ = writeln!(out, "<tr><td style=\"padding:12px 24px;font-size:12px;color:#9aa5b1\">{name}</td></tr>");
    out.push_str("</table>\n</body></html>\n");
    out
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is not configured: {0} is not set")]
    NotConfigured(&'static str),
    #[error("SES refused or failed: {0}")]
    Ses(String),
}

/// Sends mail with SES v2 from `MAIL_FROM`; links under `APP_BASE_URL`.
/// Cheap to build and clone: the SES client is made on the first send.
#[derive(Clone, Debug)]
pub struct Mailer {
    ses: SesClient,
    from: Option<String>,
    base_url: Option<String>,
}

impl Mailer {
    pub fn new(ses: SesClient, from: Option<String>, base_url: Option<String>) -> Self {
        let base_url = base_url.map(|b| b.trim_end_matches('/').to_owned());
        Self { ses, from, base_url }
    }

    /// `<APP_BASE_URL>/<page>?token=<token>` (tokens are URL-safe as they
    /// are: base64url, UUIDs and dots). `None` without a base URL.
    pub fn link(&self, page: &str, token: &str) -> Option<String> {
        let base = self.base_url.as_deref()?;
        Some(match token {
            "" => format!("{base}/{page}"),
            token => format!("{base}/{page}?token={token}"),
        })
    }

    /// Sends `mail`; answers SES's message id.
    pub async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let from = self.from.as_deref().ok_or(MailError::NotConfigured("MAIL_FROM"))?;
        let content = |data: &str| {
            Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError::Ses(e.to_string()))
        };
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.text)?).html(content(&mail.html)?).build())
            .build();
        let output = self
            .ses
            .client()
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError::Ses(aws_sdk_sesv2::error::DisplayErrorContext(e).to_string()))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }

    /// Renders and sends `notice` after the change that caused it committed:
    /// a failure is logged with the request id (the kind of mail, never its
    /// link or address) and answered `false`, not raised.
    pub async fn deliver(&self, notice: &Notice, brand: &Brand, to: &str) -> bool {
        let mail = notice.render(brand, to);
        match self.send(&mail).await {
            Ok(message_id) => {
                tracing::info!(mail = notice.kind(), message_id = %message_id, "mail sent");
                true
            }
            Err(err) => {
                tracing::error!(
                    mail = notice.kind(),
                    request_id = %crate::request_id::current_request_id(),
                    error = %err,
                    "mail not sent"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn tenant(configuration: serde_json::Value) -> Tenant {
        let mut tenant = Tenant::minimal("Acme <Labs>", "acme", "owner@acme.example", Uuid::nil());
        tenant.configuration = configuration;
        tenant
    }

    #[test]
    fn a_brand_takes_the_tenants_logo_and_colour_and_refuses_bad_ones() {
        let brand = Brand::of(&tenant(
            json!({"branding": {"logo_url": "https://cdn.acme.example/logo.png", "primary_color": "#ff6600"}}),
        ));
        assert_eq!(brand.logo_url.as_deref(), Some("https://cdn.acme.example/logo.png"));
        assert_eq!(brand.primary_color, "#ff6600");
        let bad = Brand::of(&tenant(
            json!({"branding": {"logo_url": "javascript:alert(1)", "primary_color": "red;background:url(x)"}}),
        ));
        assert_eq!((bad.logo_url, bad.primary_color.as_str()), (None, DEFAULT_COLOR));
        let mut fallback = tenant(json!({}));
        fallback.logo_url = Some("https://acme.example/own.png".into());
        assert_eq!(Brand::of(&fallback).logo_url.as_deref(), Some("https://acme.example/own.png"));
    }

    #[test]
    fn the_html_part_escapes_everything_it_interpolates() {
        let brand = Brand {
            name: "Acme <script>alert(1)</script> & \"Co\"".into(),
            logo_url: Some("https://x.example/a.png?a=1&b=\"2\"".into()),
            primary_color: "#123456".into(),
        };
        let notice = Notice::Verification {
            first_name: "<b>Eve</b>".into(),
            link: "https://app.example.com/verify-email?token=vfy.a.b.c\"><script>".into(),
            valid_hours: 48,
        };
        let mail = notice.render(&brand, "eve@example.com");
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<b>Eve"), "{}", mail.html);
        assert!(mail.html.contains("Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
        assert!(mail.html.contains("src=\"https://x.example/a.png?a=1&amp;b=&quot;2&quot;\""));
        assert!(mail.html.contains("border-top:4px solid #123456"));
        // The text part is plain: nothing to escape, the same words.
        assert!(mail.text.contains("Hello <b>Eve</b>,"));
        assert!(mail.text.contains("valid for 48 hours"));
        assert_eq!(mail.to, "eve@example.com");
        assert_eq!(
            format!("{mail:?}"),
            "Mail { subject: \"Confirm your email address for Acme <script>alert(1)</script> & \\\"Co\\\"\", .. }"
        );
    }

    #[test]
    fn each_notice_carries_its_link_in_both_parts() {
        let brand = Brand::platform();
        let link = "https://app.example.com/reset-password?token=rst.t.i.s".to_owned();
        let notices = [
            Notice::Invitation { role: "admin".into(), link: link.clone(), valid_days: 7 },
            Notice::Verification { first_name: "A".into(), link: link.clone(), valid_hours: 48 },
            Notice::PasswordReset { first_name: "A".into(), link: link.clone(), valid_minutes: 30 },
            Notice::PasswordChanged { first_name: "A".into(), forgot_link: link.clone() },
            Notice::Lockout { first_name: String::new(), minutes: 15, forgot_link: link.clone() },
            Notice::MfaChanged { first_name: "A".into(), change: MfaChange::Disabled, forgot_link: link.clone() },
        ];
        for notice in notices {
            let mail = notice.render(&brand, "a@example.com");
            assert!(mail.text.contains(&link) && mail.html.contains(&link), "{}", notice.kind());
            assert!(mail.html.starts_with("<!DOCTYPE html>") && mail.html.ends_with("</html>\n"));
        }
        let invitation = Notice::Invitation { role: "admin".into(), link, valid_days: 7 }.render(&brand, "x@y.z");
        assert!(invitation.text.contains("as an admin."));
    }

    #[test]
    fn links_join_the_base_url_without_a_double_slash() {
        let sdk = aws_config::SdkConfig::builder().build();
        let mailer = Mailer::new(SesClient::new(&sdk), None, Some("https://app.example.com/".into()));
        assert_eq!(
            mailer.link("reset-password", "rst.a.b.c").as_deref(),
            Some("https://app.example.com/reset-password?token=rst.a.b.c")
        );
        assert_eq!(mailer.link("forgot-password", "").as_deref(), Some("https://app.example.com/forgot-password"));
        assert!(Mailer::new(SesClient::new(&sdk), None, None).link("x", "y").is_none());
    }
}
