//! Invoice PDF rendering.
//!
//! [`render`] turns an [`InvoicePdf`] (plain, already formatted strings) into
//! the bytes of an A4 PDF: a header with the seller and the invoice's
//! particulars, the bill-to party, a table of lines (tier breakdowns indented
//! under their line, amounts right-aligned), the totals and a notes line.
//! Lines that do not fit on a page continue on the next one, under a repeated
//! table header; every page carries "Page i of n".
//!
//! The PDF is written by `krilla`. DejaVu Sans and DejaVu Sans Bold are
//! compiled in (`assets/`, licence beside them; `scripts/invoice-fonts.sh`
//! strips them to what this renderer reads, which kept the billing zip under
//! 6 MB) and embedded as subsets with a ToUnicode map, so the text can be
//! searched, copied and extracted. Glyphs
//! are placed one per character from the fonts' own metrics (`skrifa`): no
//! kerning, ligatures or bidirectional reordering, which invoices do not need.
//!
//! Nothing here panics on any input: text is cleaned of control characters,
//! characters the fonts lack become U+FFFD, and every string is wrapped or
//! cut with an ellipsis to the width it is given (figures first shrink a
//! little). Layout is done first into a display list per page, then drawn.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider};

const REGULAR_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// An invoice ready to print: every field is already formatted by the caller
/// (dates, quantities, prices and amounts as they should appear).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoicePdf {
    pub seller_name: String,
    /// Street, city, country, VAT number... one entry per printed line.
    pub seller_address: Vec<String>,
    pub bill_to_company: String,
    pub bill_to_department: Option<String>,
    pub bill_to_address: Vec<String>,
    /// Printed as "Tax ID: <value>".
    pub bill_to_tax_id: Option<String>,
    /// e.g. "INV-2024-0001".
    pub invoice_number: String,
    pub issue_date: String,
    pub due_date: String,
    /// e.g. "2024-01-01 to 2024-01-31".
    pub period: String,
    pub purchase_order: Option<String>,
    /// e.g. "Net 30".
    pub payment_terms: String,
    /// e.g. "EUR"; shown in the header and the amount column's title.
    pub currency: String,
    pub lines: Vec<PdfLine>,
    pub subtotal: String,
    /// e.g. "Tax (20%)".
    pub tax_label: String,
    pub tax_amount: String,
    pub total: String,
    /// A notes / footer paragraph under the totals; empty for none.
    pub notes: String,
}

/// One invoice line; `tiers` is its pricing breakdown (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfLine {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub tiers: Vec<PdfTierLine>,
}

/// One tier of a line's breakdown, e.g. "100,001 - 1,000,000".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfTierLine {
    pub label: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// A compiled-in font could not be read (cannot happen with the vendored files).
    #[error("invoice PDF font could not be loaded: {0}")]
    Font(&'static str),
    /// The PDF writer refused the document.
    #[error("invoice PDF could not be written: {0}")]
    Write(String),
}

/// Renders the invoice as a PDF document (A4, one or more pages).
pub fn render(invoice: &InvoicePdf) -> Result<Vec<u8>, PdfError> {
    let faces = Faces::load()?;
    let pages = layout(invoice, &faces);

    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(faces.regular.clean(&format!("Invoice {}", invoice.invoice_number)))
            .language("en".to_owned()),
    );
    for ops in &pages {
        let settings =
            PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| PdfError::Write("invalid page size".to_owned()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text { x, y, size, bold, color, text } => {
                    let face = faces.get(*bold);
                    let glyphs = face.glyphs(text);
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: rgb::Color::new(color.0, color.1, color.2).into(),
                        opacity: NormalizedF32::ONE,
                        rule: Default::default(),
                    }));
                    surface.draw_glyphs(Point::from_xy(*x, *y), &glyphs, face.font.clone(), text, *size, false);
                }
                Op::Rule { x1, x2, y, width, color } => {
                    let mut builder = PathBuilder::new();
                    builder.move_to(*x1, *y);
                    builder.line_to(*x2, *y);
                    if let Some(path) = builder.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: rgb::Color::new(color.0, color.1, color.2).into(),
                            width: *width,
                            ..Default::default()
                        }));
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| PdfError::Write(e.to_string()))
}

// ---------------------------------------------------------------------------
// Fonts: glyph lookup and measurement.

struct Face {
    font: Font,
    charmap: skrifa::charmap::Charmap<'static>,
    metrics: GlyphMetrics<'static>,
    units_per_em: f32,
    /// The character drawn for one the font lacks.
    replacement: char,
}

impl Face {
    fn load(data: &'static [u8], name: &'static str) -> Result<Self, PdfError> {
        let font_ref = FontRef::new(data).map_err(|_| PdfError::Font(name))?;
        let units_per_em = f32::from(font_ref.metrics(Size::unscaled(), LocationRef::default()).units_per_em);
        if units_per_em <= 0.0 {
            return Err(PdfError::Font(name));
        }
        let charmap = font_ref.charmap();
        let replacement = if charmap.map('\u{FFFD}').is_some() { '\u{FFFD}' } else { '?' };
        Ok(Self {
            font: Font::new(data.into(), 0).ok_or(PdfError::Font(name))?,
            metrics: font_ref.glyph_metrics(Size::unscaled(), LocationRef::default()),
            charmap,
            units_per_em,
            replacement,
        })
    }

    /// The text as it will be drawn: whitespace and control characters become
    /// spaces, characters without a glyph the replacement character.
    /// Invisible formatting characters (zero-width spaces, bidi controls, BOM)
    /// are dropped; input past `MAX_INPUT_CHARS` ends in an ellipsis.
    fn clean(&self, text: &str) -> String {
        let mut out: String = text
            .chars()
            .take(MAX_INPUT_CHARS)
            .filter(|c| !matches!(*c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF))
            .map(|c| {
                if c.is_control() || c.is_whitespace() {
                    ' '
                } else if self.charmap.map(c).is_some() {
                    c
                } else {
                    self.replacement
                }
            })
            .collect();
        if text.chars().nth(MAX_INPUT_CHARS).is_some() {
            out.push('…');
        }
        out
    }

    /// Advance of a (cleaned) character, in em.
    fn advance(&self, c: char) -> f32 {
        let gid = self.charmap.map(c).unwrap_or(skrifa::GlyphId::NOTDEF);
        self.metrics.advance_width(gid).unwrap_or(0.0) / self.units_per_em
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .map(|(i, c)| {
                let gid = self.charmap.map(c).unwrap_or(skrifa::GlyphId::NOTDEF);
                KrillaGlyph::new(GlyphId::new(gid.to_u32()), self.advance(c), 0.0, 0.0, 0.0, i..i + c.len_utf8(), None)
            })
            .collect()
    }

    /// Cleaned text cut to `width`, with an ellipsis when something was cut.
    fn fit(&self, text: &str, size: f32, width: f32) -> String {
        let text = self.clean(text);
        self.ellipsize(text, size, width, false)
    }

    fn ellipsize(&self, text: String, size: f32, width: f32, force: bool) -> String {
        if !force && self.width(&text, size) <= width {
            return text;
        }
        let ellipsis = self.advance('…') * size;
        let mut used = 0.0;
        let mut out = String::new();
        for c in text.chars() {
            let w = self.advance(c) * size;
            if used + w + ellipsis > width {
                break;
            }
            used += w;
            out.push(c);
        }
        let mut out = out.trim_end().to_owned();
        if used + ellipsis <= width {
            out.push('…');
        }
        out
    }

    /// Figures: shrink down to `min_size` to fit, then cut.
    fn fit_shrink(&self, text: &str, size: f32, min_size: f32, width: f32) -> (String, f32) {
        let text = self.clean(text);
        let natural = self.width(&text, size);
        if natural <= width {
            return (text, size);
        }
        let shrunk = (size * width / natural).max(min_size);
        if self.width(&text, shrunk) <= width {
            (text, shrunk)
        } else {
            (self.ellipsize(text, min_size, width, false), min_size)
        }
    }

    /// Greedy word wrap to `width`, at most `max_lines` lines (the last one
    /// ends with an ellipsis when text was left out). Never empty.
    fn wrap(&self, text: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
        let text = self.clean(text);
        let max_lines = max_lines.max(1);
        let mut lines: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut truncated = false;
        'words: for word in text.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
            if self.width(&candidate, size) <= width {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                if lines.len() >= max_lines {
                    truncated = true;
                    break 'words;
                }
            }
            // The word alone: break it wherever it overflows.
            for c in word.chars() {
                let mut next = current.clone();
                next.push(c);
                if !current.is_empty() && self.width(&next, size) > width {
                    lines.push(std::mem::take(&mut current));
                    if lines.len() >= max_lines {
                        truncated = true;
                        break 'words;
                    }
                    current.push(c);
                } else {
                    current = next;
                }
            }
        }
        if !current.is_empty() {
            if lines.len() >= max_lines {
                truncated = true;
            } else {
                lines.push(current);
            }
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
        if truncated && let Some(last) = lines.last_mut() {
            *last = self.ellipsize(std::mem::take(last), size, width, true);
        }
        lines
    }
}

struct Faces {
    regular: Face,
    bold: Face,
}

impl Faces {
    fn load() -> Result<Self, PdfError> {
        Ok(Self { regular: Face::load(REGULAR_TTF, "DejaVu Sans")?, bold: Face::load(BOLD_TTF, "DejaVu Sans Bold")? })
    }

    fn get(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

// ---------------------------------------------------------------------------
// Layout: a display list per page. Coordinates in points, origin top left,
// `y` of a text is its baseline.

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_W - 50.0;
const TOP: f32 = 50.0;
/// Content stops here; the footer sits below.
const BOTTOM: f32 = PAGE_H - 62.0;
const FOOTER_Y: f32 = PAGE_H - 34.0;

/// Longest input string considered (longer text could never be shown anyway).
const MAX_INPUT_CHARS: usize = 2_000;
const MAX_ADDRESS_LINES: usize = 6;
const MAX_DESCRIPTION_LINES: usize = 3;
const MAX_NOTE_LINES: usize = 40;

// Table columns: description on the left, figures right-aligned at these edges.
const COL_DESC_W: f32 = 250.0;
const COL_QTY_RIGHT: f32 = 372.0;
const COL_QTY_W: f32 = 62.0;
const COL_UNIT_RIGHT: f32 = 458.0;
const COL_UNIT_W: f32 = 78.0;
const COL_AMOUNT_RIGHT: f32 = RIGHT;
const COL_AMOUNT_W: f32 = 80.0;
const TIER_INDENT: f32 = 14.0;

type Color = (u8, u8, u8);
const INK: Color = (0x1f, 0x23, 0x28);
const MUTED: Color = (0x5f, 0x66, 0x6d);
const ACCENT: Color = (0x1d, 0x4e, 0x89);
const HAIRLINE: Color = (0xc8, 0xcd, 0xd2);

#[derive(Debug, Clone, Copy)]
struct Style {
    size: f32,
    bold: bool,
    color: Color,
}

const fn st(size: f32, bold: bool, color: Color) -> Style {
    Style { size, bold, color }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text { x: f32, y: f32, size: f32, bold: bool, color: Color, text: String },
    Rule { x1: f32, x2: f32, y: f32, width: f32, color: Color },
}

struct Layout<'a> {
    faces: &'a Faces,
    invoice: &'a InvoicePdf,
    pages: Vec<Vec<Op>>,
    /// Top of the free space on the current page.
    y: f32,
}

impl Layout<'_> {
    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Text whose (already fitted) string starts at `x`.
    fn text(&mut self, x: f32, baseline: f32, style: Style, text: String) {
        if text.is_empty() {
            return;
        }
        let Style { size, bold, color } = style;
        self.ops().push(Op::Text { x, y: baseline, size, bold, color, text });
    }

    /// Text starting at `x`, cut to `width`.
    fn left(&mut self, x: f32, baseline: f32, style: Style, raw: &str, width: f32) {
        let text = self.faces.get(style.bold).fit(raw, style.size, width);
        self.text(x, baseline, style, text);
    }

    /// A figure right-aligned at `right`, shrunk or cut to `width`.
    fn right(&mut self, right: f32, baseline: f32, style: Style, raw: &str, width: f32) {
        let face = self.faces.get(style.bold);
        let (text, size) = face.fit_shrink(raw, style.size, style.size * 0.75, width);
        let x = right - face.width(&text, size);
        self.text(x, baseline, Style { size, ..style }, text);
    }

    fn rule(&mut self, y: f32, width: f32, color: Color) {
        self.ops().push(Op::Rule { x1: LEFT, x2: RIGHT, y, width, color });
    }

    /// Starts a continuation page: a compact header, then (for the table) its column titles.
    fn new_page(&mut self, table_header: bool) {
        self.pages.push(Vec::new());
        self.y = TOP;
        let inv = self.invoice;
        self.left(LEFT, self.y + 10.0, st(10.0, true, INK), &inv.seller_name, 260.0);
        let title = format!("Invoice {} (continued)", inv.invoice_number);
        self.right(RIGHT, self.y + 10.0, st(10.0, true, ACCENT), &title, 230.0);
        self.y += 18.0;
        self.rule(self.y, 0.6, HAIRLINE);
        self.y += 16.0;
        if table_header {
            self.table_header();
        }
    }

    /// Makes room for `height` points, starting a continuation page if needed.
    fn ensure(&mut self, height: f32, table_header: bool) {
        if self.y + height > BOTTOM {
            self.new_page(table_header);
        }
    }

    fn header(&mut self) {
        let inv = self.invoice;
        self.pages.push(Vec::new());
        let top = TOP;

        // Seller, top left.
        let mut y = top + 16.0;
        self.left(LEFT, y, st(16.0, true, INK), &inv.seller_name, 270.0);
        y += 6.0;
        for line in inv.seller_address.iter().take(MAX_ADDRESS_LINES) {
            y += 12.0;
            self.left(LEFT, y, st(9.0, false, MUTED), line, 270.0);
        }
        let left_bottom = y;

        // Title and particulars, top right.
        let mut y = top + 20.0;
        self.right(RIGHT, y, st(22.0, true, ACCENT), "INVOICE", 200.0);
        y += 10.0;
        let mut rows: Vec<(&str, &str, bool)> = vec![
            ("Invoice number", inv.invoice_number.as_str(), true),
            ("Issue date", inv.issue_date.as_str(), false),
            ("Due date", inv.due_date.as_str(), true),
            ("Period", inv.period.as_str(), false),
        ];
        if let Some(po) = inv.purchase_order.as_deref() {
            rows.push(("Purchase order", po, false));
        }
        rows.push(("Payment terms", inv.payment_terms.as_str(), false));
        rows.push(("Currency", inv.currency.as_str(), false));
        const LABEL_X: f32 = 330.0;
        const VALUE_LEFT: f32 = LABEL_X + 76.0;
        for (label, value, bold) in rows {
            y += 13.0;
            self.left(LABEL_X, y, st(8.5, false, MUTED), label, VALUE_LEFT - LABEL_X - 4.0);
            self.right(RIGHT, y, st(9.0, bold, INK), value, RIGHT - VALUE_LEFT);
        }
        let right_bottom = y;

        self.y = left_bottom.max(right_bottom) + 18.0;
        self.rule(self.y, 0.6, HAIRLINE);
        self.y += 18.0;

        // Bill to.
        let mut y = self.y + 8.0;
        self.left(LEFT, y, st(8.0, true, MUTED), "BILL TO", 200.0);
        y += 15.0;
        self.left(LEFT, y, st(11.0, true, INK), &inv.bill_to_company, 300.0);
        if let Some(dept) = inv.bill_to_department.as_deref() {
            y += 13.0;
            self.left(LEFT, y, st(9.0, false, INK), dept, 300.0);
        }
        for line in inv.bill_to_address.iter().take(MAX_ADDRESS_LINES) {
            y += 12.0;
            self.left(LEFT, y, st(9.0, false, INK), line, 300.0);
        }
        if let Some(tax_id) = inv.bill_to_tax_id.as_deref() {
            y += 12.0;
            self.left(LEFT, y, st(9.0, false, MUTED), &format!("Tax ID: {tax_id}"), 300.0);
        }
        self.y = y + 24.0;
    }

    fn table_header(&mut self) {
        let base = self.y + 9.0;
        let amount_title = if self.invoice.currency.trim().is_empty() {
            "Amount".to_owned()
        } else {
            format!("Amount ({})", self.invoice.currency.trim())
        };
        self.left(LEFT, base, st(8.0, true, MUTED), "DESCRIPTION", COL_DESC_W);
        self.right(COL_QTY_RIGHT, base, st(8.0, true, MUTED), "QUANTITY", COL_QTY_W);
        self.right(COL_UNIT_RIGHT, base, st(8.0, true, MUTED), "UNIT PRICE", COL_UNIT_W);
        self.right(COL_AMOUNT_RIGHT, base, st(8.0, true, MUTED), &amount_title.to_uppercase(), COL_AMOUNT_W);
        self.y += 15.0;
        self.rule(self.y, 0.8, INK);
        self.y += 4.0;
    }

    fn table(&mut self) {
        let inv = self.invoice;
        self.ensure(40.0, false);
        self.table_header();
        const LINE_SIZE: f32 = 9.0;
        const LINE_LEAD: f32 = 12.0;
        const TIER_SIZE: f32 = 7.5;
        const TIER_LEAD: f32 = 10.5;
        const PAD: f32 = 5.0;
        let full_page = BOTTOM - TOP - 60.0;

        for line in &inv.lines {
            let desc = self.faces.regular.wrap(&line.description, LINE_SIZE, COL_DESC_W, MAX_DESCRIPTION_LINES);
            let main_h = PAD + desc.len() as f32 * LINE_LEAD;
            let block_h = main_h + line.tiers.len() as f32 * TIER_LEAD + PAD;
            // Keep a line with its breakdown when the whole fits on a page,
            // otherwise at least with its first tier.
            let keep = if block_h <= full_page {
                block_h
            } else {
                main_h + TIER_LEAD.min(line.tiers.len() as f32 * TIER_LEAD)
            };
            self.ensure(keep, true);

            let base = self.y + PAD + LINE_SIZE;
            for (i, text) in desc.into_iter().enumerate() {
                self.text(LEFT, base + i as f32 * LINE_LEAD, st(LINE_SIZE, false, INK), text);
            }
            self.right(COL_QTY_RIGHT, base, st(LINE_SIZE, false, INK), &line.quantity, COL_QTY_W);
            self.right(COL_UNIT_RIGHT, base, st(LINE_SIZE, false, INK), &line.unit_price, COL_UNIT_W);
            self.right(COL_AMOUNT_RIGHT, base, st(LINE_SIZE, false, INK), &line.amount, COL_AMOUNT_W);
            self.y += main_h;

            for tier in &line.tiers {
                self.ensure(TIER_LEAD + PAD, true);
                let base = self.y + TIER_SIZE + 1.0;
                self.left(LEFT + TIER_INDENT, base, st(TIER_SIZE, false, MUTED), &tier.label, COL_DESC_W - TIER_INDENT);
                self.right(COL_QTY_RIGHT, base, st(TIER_SIZE, false, MUTED), &tier.quantity, COL_QTY_W);
                self.right(COL_UNIT_RIGHT, base, st(TIER_SIZE, false, MUTED), &tier.unit_price, COL_UNIT_W);
                self.right(COL_AMOUNT_RIGHT, base, st(TIER_SIZE, false, MUTED), &tier.amount, COL_AMOUNT_W);
                self.y += TIER_LEAD;
            }
            self.y += PAD;
            self.rule(self.y, 0.4, HAIRLINE);
        }
        if inv.lines.is_empty() {
            self.ensure(24.0, true);
            self.left(LEFT, self.y + 14.0, st(9.0, false, MUTED), "No charges for this period.", COL_DESC_W);
            self.y += 22.0;
            self.rule(self.y, 0.4, HAIRLINE);
        }
    }

    fn totals(&mut self) {
        let inv = self.invoice;
        self.y += 10.0;
        self.ensure(66.0, false);
        const LABEL_X: f32 = 330.0;
        const LABEL_W: f32 = 120.0;
        let value_w = RIGHT - LABEL_X - LABEL_W;
        let mut y = self.y + 12.0;
        self.left(LABEL_X, y, st(9.0, false, MUTED), "Subtotal", LABEL_W);
        self.right(RIGHT, y, st(9.0, false, INK), &inv.subtotal, value_w);
        y += 15.0;
        let tax_label = if inv.tax_label.trim().is_empty() { "Tax" } else { inv.tax_label.as_str() };
        self.left(LABEL_X, y, st(9.0, false, MUTED), tax_label, LABEL_W);
        self.right(RIGHT, y, st(9.0, false, INK), &inv.tax_amount, value_w);
        y += 9.0;
        self.ops().push(Op::Rule { x1: LABEL_X, x2: RIGHT, y, width: 0.8, color: INK });
        y += 17.0;
        let total_label = if inv.currency.trim().is_empty() {
            "Total".to_owned()
        } else {
            format!("Total ({})", inv.currency.trim())
        };
        self.left(LABEL_X, y, st(11.0, true, INK), &total_label, LABEL_W);
        self.right(RIGHT, y, st(11.0, true, INK), &inv.total, value_w);
        self.y = y + 10.0;
    }

    fn notes(&mut self) {
        let inv = self.invoice;
        if inv.notes.trim().is_empty() {
            return;
        }
        const SIZE: f32 = 8.5;
        const LEAD: f32 = 11.5;
        self.y += 22.0;
        let lines = self.faces.regular.wrap(&inv.notes, SIZE, RIGHT - LEFT, MAX_NOTE_LINES);
        for line in lines {
            self.ensure(LEAD, false);
            self.text(LEFT, self.y + SIZE, st(SIZE, false, MUTED), line);
            self.y += LEAD;
        }
    }

    /// "Seller · Invoice N" and "Page i of n" under every page.
    fn footers(&mut self) {
        let count = self.pages.len();
        let inv = self.invoice;
        let who = format!("{} · Invoice {}", inv.seller_name.trim(), inv.invoice_number.trim());
        let who = self.faces.regular.fit(&who, 7.5, 360.0);
        for (i, ops) in self.pages.iter_mut().enumerate() {
            ops.push(Op::Rule { x1: LEFT, x2: RIGHT, y: FOOTER_Y - 10.0, width: 0.4, color: HAIRLINE });
            ops.push(Op::Text { x: LEFT, y: FOOTER_Y, size: 7.5, bold: false, color: MUTED, text: who.clone() });
            let page = format!("Page {} of {}", i + 1, count);
            let x = RIGHT - self.faces.regular.width(&page, 7.5);
            ops.push(Op::Text { x, y: FOOTER_Y, size: 7.5, bold: false, color: MUTED, text: page });
        }
    }
}

fn layout(invoice: &InvoicePdf, faces: &Faces) -> Vec<Vec<Op>> {
    let mut layout = Layout { faces, invoice, pages: Vec::new(), y: TOP };
    layout.header();
    layout.table();
    layout.totals();
    layout.notes();
    layout.footers();
    layout.pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InvoicePdf {
        InvoicePdf {
            seller_name: "Acme Cloud GmbH".into(),
            seller_address: vec!["Friedrichstraße 12".into(), "10117 Berlin, Germany".into(), "VAT DE123456789".into()],
            bill_to_company: "Globex Corporation".into(),
            bill_to_department: Some("Accounts Payable".into()),
            bill_to_address: vec!["1 Infinite Loop".into(), "Springfield, OR 97403".into()],
            bill_to_tax_id: Some("US-98-7654321".into()),
            invoice_number: "INV-2024-0001".into(),
            issue_date: "2024-02-01".into(),
            due_date: "2024-03-02".into(),
            period: "2024-01-01 to 2024-01-31".into(),
            purchase_order: Some("PO-7731".into()),
            payment_terms: "Net 30".into(),
            currency: "EUR".into(),
            lines: vec![
                PdfLine {
                    description: "Enterprise plan (January 2024)".into(),
                    quantity: "1".into(),
                    unit_price: "2000.00".into(),
                    amount: "2000.00".into(),
                    tiers: vec![],
                },
                PdfLine {
                    description: "API calls".into(),
                    quantity: "2500000".into(),
                    unit_price: "graduated".into(),
                    amount: "1570.00".into(),
                    tiers: vec![
                        PdfTierLine {
                            label: "0 - 100000".into(),
                            quantity: "100000".into(),
                            unit_price: "0.001".into(),
                            amount: "100.00".into(),
                        },
                        PdfTierLine {
                            label: "100000 - 1000000".into(),
                            quantity: "900000".into(),
                            unit_price: "0.0008".into(),
                            amount: "720.00".into(),
                        },
                        PdfTierLine {
                            label: "above 1000000".into(),
                            quantity: "1500000".into(),
                            unit_price: "0.0005".into(),
                            amount: "750.00".into(),
                        },
                    ],
                },
                PdfLine {
                    description: "Storage (GB-hours)".into(),
                    quantity: "33552.5".into(),
                    unit_price: "0.02".into(),
                    amount: "671.05".into(),
                    tiers: vec![],
                },
            ],
            subtotal: "4241.05".into(),
            tax_label: "VAT (19%)".into(),
            tax_amount: "805.80".into(),
            total: "5046.85".into(),
            notes: "Please pay by bank transfer to IBAN DE89 3704 0044 0532 0130 00, quoting the invoice number."
                .into(),
        }
    }

    fn extract(pdf: &[u8]) -> String {
        pdf_extract::extract_text_from_mem(pdf).expect("text extraction")
    }

    fn pages(pdf: &[u8]) -> Vec<String> {
        pdf_extract::extract_text_from_mem_by_pages(pdf).expect("text extraction")
    }

    #[test]
    fn pdf_text_is_extractable() {
        let invoice = sample();
        let pdf = render(&invoice).expect("render");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = extract(&pdf);
        for needle in [
            "INV-2024-0001",
            "Enterprise plan (January 2024)",
            "API calls",
            "Storage (GB-hours)",
            "above 1000000",
            "5046.85",
            "1570.00",
            "Globex Corporation",
            "Friedrichstraße 12",
            "2024-01-01 to 2024-01-31",
            "VAT (19%)",
            "Page 1 of 1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert_eq!(pages(&pdf).len(), 1);
    }

    #[test]
    fn pdf_fonts_are_embedded_subsets_with_tounicode() {
        let pdf = render(&sample()).expect("render");
        let raw = String::from_utf8_lossy(&pdf);
        assert!(raw.contains("/FontFile2"), "font program embedded");
        assert!(raw.contains("/ToUnicode"));
        assert!(raw.contains("DejaVuSans-Bold"));
        // Subsets, not the 700 KB fonts.
        assert!(pdf.len() < 60_000, "one-page invoice is {} bytes", pdf.len());
    }

    #[test]
    fn pdf_sixty_lines_paginate() {
        let mut invoice = sample();
        invoice.lines = (1..=60)
            .map(|i| PdfLine {
                description: format!("Metered component number {i:02}"),
                quantity: format!("{}", i * 1000),
                unit_price: "0.0125".into(),
                amount: format!("{}.50", i * 12),
                tiers: if i % 10 == 0 {
                    vec![PdfTierLine {
                        label: format!("tier of line {i:02}"),
                        quantity: "10".into(),
                        unit_price: "1.00".into(),
                        amount: "10.00".into(),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        invoice.total = "99999.99".into();
        let pdf = render(&invoice).expect("render");
        let pages = pages(&pdf);
        assert!(pages.len() >= 2, "60 lines need more than one page");
        let n = pages.len();
        let all = pages.concat();
        for i in 1..=60 {
            let needle = format!("Metered component number {i:02}");
            assert_eq!(all.matches(&needle).count(), 1, "{needle:?} once");
        }
        assert!(all.contains("tier of line 60"));
        for (i, page) in pages.iter().enumerate() {
            assert!(page.contains(&format!("Page {} of {n}", i + 1)), "footer on page {}", i + 1);
        }
        assert!(pages[1].contains("INV-2024-0001 (continued)"));
        assert!(pages[n - 1].contains("99999.99"), "total on the last page");
        assert!(!pages[0].contains("99999.99"));
    }

    #[test]
    fn pdf_layout_stays_inside_the_page() {
        let mut invoice = sample();
        let long = "Überlängen-Beschreibung ".repeat(200);
        let word = "x".repeat(5000);
        invoice.seller_name = long.clone();
        invoice.seller_address = vec![word.clone(); 50];
        invoice.bill_to_company = word.clone();
        invoice.invoice_number = format!("INV-{word}");
        invoice.period = long.clone();
        invoice.total = "9".repeat(300);
        invoice.notes = long.clone();
        invoice.lines = (0..30)
            .map(|i| PdfLine {
                description: if i % 2 == 0 { long.clone() } else { word.clone() },
                quantity: "1".repeat(80),
                unit_price: "\u{0}\t\n\r".into(),
                amount: "漢字🙂 \u{202e}RTL".into(),
                tiers: vec![
                    PdfTierLine {
                        label: word.clone(),
                        quantity: long.clone(),
                        unit_price: String::new(),
                        amount: "1".into(),
                    };
                    i
                ],
            })
            .collect();
        let faces = Faces::load().expect("fonts");
        let pages = layout(&invoice, &faces);
        assert!(pages.len() > 1);
        for op in pages.iter().flatten() {
            if let Op::Text { x, y, size, bold, text, .. } = op {
                let w = faces.get(*bold).width(text, *size);
                assert!(*x >= LEFT - 0.01 && x + w <= RIGHT + 0.01, "{text:?} at {x} width {w}");
                assert!(*y > 0.0 && *y <= FOOTER_Y + 0.01, "{text:?} at y {y}");
                assert!(!text.chars().any(char::is_control));
            }
        }
        let pdf = render(&invoice).expect("render");
        let text = extract(&pdf);
        assert!(text.contains('…'));
        assert!(!text.contains('\u{202e}'));
    }

    #[test]
    fn pdf_renders_empty_and_is_deterministic() {
        let empty = render(&InvoicePdf::default()).expect("render empty");
        assert!(extract(&empty).contains("No charges for this period."));
        assert_eq!(render(&sample()).expect("a"), render(&sample()).expect("b"));
    }

    /// What `scripts/invoice-fonts.sh` keeps and drops, in both faces: the
    /// letters of every script DejaVu Sans has, the currency signs and
    /// operators stay; pictographs print as U+FFFD.
    #[test]
    fn pdf_fonts_keep_every_script_and_drop_pictographs() {
        let faces = Faces::load().expect("fonts");
        let text = "Åß Ωλ Жё Աբ ქა ŁĞ €£¥₹ № ≤ → ✓☃🙂🂡⠁";
        for face in [&faces.regular, &faces.bold] {
            assert_eq!(face.clean(text), "Åß Ωλ Жё Աբ ქა ŁĞ €£¥₹ № ≤ → \u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}");
        }
    }

    #[test]
    fn pdf_wrap_keeps_words_and_limits_lines() {
        let faces = Faces::load().expect("fonts");
        let lines = faces.regular.wrap("alpha beta gamma delta", 9.0, 60.0, 10);
        assert_eq!(lines.join(" "), "alpha beta gamma delta");
        assert!(lines.len() > 1);
        let lines = faces.regular.wrap(&"word ".repeat(500), 9.0, 100.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'));
        assert_eq!(faces.regular.wrap("", 9.0, 100.0, 3), vec![String::new()]);
        assert_eq!(faces.regular.wrap("abc", 9.0, 0.0, 3).len(), 3);
    }
}
