//! Invoices beyond their storage: drafting from a request, and the PDF of a
//! numbered invoice (rendered once, kept in S3 under the tenant's prefix,
//! linked by a short-lived presigned URL).

use std::time::Duration;

use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::TenantScope,
    blobs::tenant_prefix,
    domain::billing::{
        account::BillingAccount,
        invoice::{GenerateInvoiceRequest, Invoice, InvoiceView},
    },
};

use crate::pdf::{InvoicePdf, PdfLine, PdfTierLine, render};

/// How long a `pdf_url` works.
pub const PDF_LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Who issues the invoices (the platform operator), printed in the header.
pub const SELLER_NAME: &str = "SaaS Platform";

/// A draft from `POST /v1/billing/invoices/generate`.
pub async fn draft(
    state: &AppState,
    scope: &TenantScope,
    request: GenerateInvoiceRequest,
    audit: &AuditContext,
) -> AppResult<Invoice> {
    let request = request.validate(shared::domain::now().date_naive())?;
    state
        .store
        .draft_invoice(scope, &request, None, audit)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a requested draft was not created")))
}

/// The S3 key of an invoice's PDF.
pub fn pdf_key(scope: &TenantScope, invoice: &Invoice) -> String {
    format!("{}invoices/{}.pdf", tenant_prefix(scope), invoice.id)
}

/// The invoice's view, with a fresh link to its PDF once it has a number.
/// The PDF is rendered and stored the first time (a finalization whose
/// upload failed is completed by the next read).
pub async fn with_pdf(state: &AppState, scope: &TenantScope, invoice: Invoice) -> AppResult<InvoiceView> {
    if invoice.number.is_none() {
        return Ok(invoice.view(None));
    }
    let key = pdf_key(scope, &invoice);
    if invoice.pdf_key.is_none() {
        let account = state.store.get_billing_account(scope).await?;
        let bytes = render(&pdf_of(&invoice, account.as_ref()))
            .map_err(|e| AppError::internal(anyhow::anyhow!("invoice PDF: {e}")))?;
        state.blobs.put(&key, bytes, "application/pdf").await?;
        state.store.mark_invoice_pdf(scope, invoice.id, &key).await?;
    }
    let url = state.blobs.presign_download(&key, PDF_LINK_LIFETIME).await?;
    Ok(invoice.view(Some(url)))
}

/// The printable invoice: what the invoice holds, formatted.
pub fn pdf_of(invoice: &Invoice, account: Option<&BillingAccount>) -> InvoicePdf {
    let money = shared::domain::billing::money::money_string;
    let bill_to = invoice.bill_to(account);
    InvoicePdf {
        seller_name: SELLER_NAME.to_owned(),
        seller_address: Vec::new(),
        bill_to_company: bill_to.company,
        bill_to_department: bill_to.department,
        bill_to_address: bill_to.lines,
        bill_to_tax_id: account.and_then(|a| a.tax_id.clone()),
        invoice_number: invoice.number.clone().unwrap_or_default(),
        issue_date: invoice.finalized_at.map(|at| at.date_naive().to_string()).unwrap_or_default(),
        due_date: invoice.due_date.map(|d| d.to_string()).unwrap_or_default(),
        period: format!("{} to {}", invoice.period_start, invoice.period_end),
        purchase_order: invoice.purchase_order.clone(),
        payment_terms: invoice.payment_terms.clone().unwrap_or_default(),
        currency: invoice.currency.clone(),
        lines: invoice
            .lines
            .iter()
            .map(|line| PdfLine {
                description: line.description.clone(),
                quantity: line.quantity.normalize().to_string(),
                unit_price: line.unit_price.map(|p| p.normalize().to_string()).unwrap_or_default(),
                amount: money(line.amount),
                tiers: line
                    .tiers
                    .iter()
                    .map(|tier| PdfTierLine {
                        label: tier.label(),
                        quantity: tier.quantity.normalize().to_string(),
                        unit_price: tier.unit_price.normalize().to_string(),
                        amount: money(tier.amount),
                    })
                    .collect(),
            })
            .collect(),
        subtotal: money(invoice.subtotal),
        tax_label: format!("Tax ({}%)", invoice.tax_rate_percent.normalize()),
        tax_amount: money(invoice.tax_amount),
        total: money(invoice.total),
        notes: format!(
            "Status: {}. Amounts in {}; each line is rounded to cents, tax applies to the rounded subtotal.",
            invoice.status.as_str(),
            invoice.currency
        ),
    }
}
