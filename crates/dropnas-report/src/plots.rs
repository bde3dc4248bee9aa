//! Plots of a run with plotters, each drawn once for SVG and once (supersampled, then encoded by
//! `png`) for PNG: training curves, the alphas of every edge over the epochs, and the measured
//! drop frequency of each op group.
//!
//! Text in PNG files is drawn with DejaVu Sans, embedded from the `dejavu` crate (Bitstream Vera
//! licence: free to use, embed and redistribute), so nothing depends on the machine's fonts.

use crate::ReportError;
use crate::run::{AlphaLine, Metrics, RunKind};
use dropnas_core::genotype::Genotype;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::Once;

/// What a drawing function returns: plotters' errors, boxed.
pub type DrawError = Box<dyn std::error::Error + Send + Sync>;

/// plotters' font size for a font whose em is 1 px: ab_glyph scales glyphs to `ascent - descent`
/// (1.164 em for DejaVu Sans).
pub const PX_TO_PLOTTERS: f64 = 1.164;

/// PNG files are drawn this many times larger, then averaged down: anti-aliased lines.
const SUPERSAMPLE: u32 = 2;

static FONTS: Once = Once::new();

/// Registers the embedded DejaVu Sans as plotters' `sans-serif` (once per process).
pub fn ensure_fonts() {
    FONTS.call_once(|| {
        // Both are valid TrueType files (the crate embeds them), so this cannot fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
    pub fn rgb(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
    /// Mixed with black by `t` (0: unchanged).
    pub fn darken(self, t: f64) -> Rgb {
        let d = |c: u8| (f64::from(c) * (1.0 - t)).round() as u8;
        Rgb(d(self.0), d(self.1), d(self.2))
    }
    /// Mixed with white by `t`.
    pub fn lighten(self, t: f64) -> Rgb {
        let l = |c: u8| (f64::from(c) + (255.0 - f64::from(c)) * t).round() as u8;
        Rgb(l(self.0), l(self.1), l(self.2))
    }
}

/// The colour of an op, the same in every figure (Tableau 10).
pub fn op_colour(op: &str) -> Rgb {
    match op {
        "sep_conv_3x3" => Rgb(0x1f, 0x77, 0xb4),
        "sep_conv_5x5" => Rgb(0x94, 0x67, 0xbd),
        "sep_conv_7x7" => Rgb(0x17, 0xbe, 0xcf),
        "dil_conv_3x3" => Rgb(0x2c, 0xa0, 0x2c),
        "dil_conv_5x5" => Rgb(0xbc, 0xbd, 0x22),
        "max_pool_3x3" => Rgb(0xff, 0x7f, 0x0e),
        "avg_pool_3x3" => Rgb(0x8c, 0x56, 0x4b),
        "skip_connect" => Rgb(0xd6, 0x27, 0x28),
        "none" => Rgb(0x7f, 0x7f, 0x7f),
        "conv_7x1_1x7" => Rgb(0xe3, 0x77, 0xc2),
        _ => Rgb(0x33, 0x33, 0x33),
    }
}

/// Colours of alpha columns: an op's colour, lighter or darker for a repeated op (3-skip).
pub fn column_colours(ops: &[String]) -> Vec<Rgb> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let seen = ops[..i].iter().filter(|o| *o == op).count();
            match seen {
                0 => op_colour(op),
                1 => op_colour(op).lighten(0.45),
                _ => op_colour(op).darken(0.4),
            }
        })
        .collect()
}

/// Legend names of alpha columns: a repeated op gets `#2`, `#3`.
pub fn column_names(ops: &[String]) -> Vec<String> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let seen = ops[..i].iter().filter(|o| *o == op).count();
            if seen == 0 { op.clone() } else { format!("{op} #{}", seen + 1) }
        })
        .collect()
}

fn font(px: f64, k: f64) -> FontDesc<'static> {
    ("sans-serif", px * k * PX_TO_PLOTTERS).into_font()
}

fn bold(px: f64, k: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, px * k * PX_TO_PLOTTERS, FontStyle::Bold)
}

fn w(px: f64, k: f64) -> u32 {
    (px * k).round().max(1.0) as u32
}

fn wi(px: f64, k: f64) -> i32 {
    (px * k).round() as i32
}

/// Draws with `draw` into an SVG document of `width` x `height`.
pub fn render_svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>, f64) -> Result<(), DrawError>,
) -> Result<String, ReportError> {
    ensure_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(&root, 1.0).map_err(|e| ReportError::Plot(e.to_string()))?;
        root.present().map_err(|e| ReportError::Plot(e.to_string()))?;
    }
    Ok(out)
}

/// Draws with `draw` (lengths times `scale`) at [`SUPERSAMPLE`] times the size, averages it down
/// to `scale * width` x `scale * height` and encodes it as PNG (RGB, 8 bits).
pub fn render_png(
    width: u32,
    height: u32,
    scale: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>, f64) -> Result<(), DrawError>,
) -> Result<Vec<u8>, ReportError> {
    ensure_fonts();
    let s = SUPERSAMPLE;
    let (width, height) = (width * scale, height * scale);
    let (bw, bh) = (width * s, height * s);
    let mut big = vec![255u8; (bw * bh * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut big, (bw, bh)).into_drawing_area();
        draw(&root, f64::from(s * scale)).map_err(|e| ReportError::Plot(e.to_string()))?;
        root.present().map_err(|e| ReportError::Plot(e.to_string()))?;
    }
    let mut small = vec![0u8; (width * height * 3) as usize];
    let (w, bw) = (width as usize, bw as usize);
    let n = s * s;
    for y in 0..height as usize {
        for x in 0..w {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..s as usize {
                    let row = (y * s as usize + dy) * bw;
                    for dx in 0..s as usize {
                        sum += u32::from(big[(row + x * s as usize + dx) * 3 + c]);
                    }
                }
                small[(y * w + x) * 3 + c] = ((sum + n / 2) / n) as u8;
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut wr = enc.write_header().map_err(|e| ReportError::Plot(format!("PNG: {e}")))?;
        wr.write_image_data(&small).map_err(|e| ReportError::Plot(format!("PNG: {e}")))?;
    }
    Ok(bytes)
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: Option<String>,
    pub colour: Rgb,
    pub opacity: f64,
    pub width: f64,
    pub dashed: bool,
    /// Marker radius (0: none).
    pub marker: f64,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    fn new(label: &str, colour: Rgb, points: Vec<(f64, f64)>) -> Line {
        Line { label: Some(label.into()), colour, opacity: 1.0, width: 2.0, dashed: false, marker: 0.0, points }
    }
}

/// A panel: lines over a shared x axis.
#[derive(Debug, Clone)]
pub struct Panel {
    pub y_desc: String,
    /// Share of the figure's height.
    pub weight: f64,
    pub lines: Vec<Line>,
    pub legend_at_bottom: bool,
    /// Fixed y range, else the data's.
    pub y_range: Option<(f64, f64)>,
}

/// Stacked panels with one x axis.
#[derive(Debug, Clone)]
pub struct PanelFigure {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub x_desc: String,
    pub x_range: (f64, f64),
    pub panels: Vec<Panel>,
}

fn data_range(lines: &[Line]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for l in lines {
        for &(_, y) in &l.points {
            if y.is_finite() {
                lo = lo.min(y);
                hi = hi.max(y);
            }
        }
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.06).max(hi.abs() * 1e-3).max(1e-9);
    (lo - pad, hi + pad)
}

/// How many x labels: one per epoch up to 10 epochs, so that every label is an epoch.
fn x_ticks((lo, hi): (f64, f64)) -> usize {
    let span = (hi - lo).round().max(1.0) as usize;
    if span <= 10 { span + 1 } else { 11 }
}

/// Tick label for a value on an axis of span `span`.
fn tick(v: f64, span: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if span < 1e-3 || v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let digits = (-(span / 5.0).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.digits$}")
}

impl PanelFigure {
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, k: f64) -> Result<(), DrawError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let title_h = wi(34.0, k);
        let (top, body) = root.split_vertically(title_h);
        top.draw(&Text::new(
            self.title.clone(),
            (wi(16.0, k), wi(18.0, k)),
            bold(15.0, k).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let total: f64 = self.panels.iter().map(|p| p.weight).sum();
        let body_h = f64::from(body.dim_in_pixel().1);
        let mut breaks = Vec::new();
        let mut acc = 0.0;
        for p in &self.panels[..self.panels.len() - 1] {
            acc += p.weight / total * body_h;
            breaks.push(acc.round() as i32);
        }
        let areas = body.split_by_breakpoints::<i32, i32, _, _>(Vec::<i32>::new(), breaks);
        let n = self.panels.len();
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            let last = i + 1 == n;
            let (y0, y1) = panel.y_range.unwrap_or_else(|| data_range(&panel.lines));
            let mut chart = ChartBuilder::on(area)
                .margin_left(wi(10.0, k))
                .margin_right(wi(24.0, k))
                .margin_top(wi(6.0, k))
                .margin_bottom(wi(if last { 6.0 } else { 2.0 }, k))
                .x_label_area_size(wi(if last { 40.0 } else { 22.0 }, k))
                .y_label_area_size(wi(74.0, k))
                .build_cartesian_2d(self.x_range.0..self.x_range.1, y0..y1)?;
            let span = y1 - y0;
            let ytick = |v: &f64| tick(*v, span);
            let xtick = |v: &f64| {
                if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.1}") }
            };
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT)
                .bold_line_style(RGBColor(0xe2, 0xe2, 0xe2).stroke_width(w(1.0, k)))
                .axis_style(RGBColor(0x66, 0x66, 0x66).stroke_width(w(1.0, k)))
                .label_style(font(11.0, k).color(&RGBColor(0x33, 0x33, 0x33)))
                .axis_desc_style(font(12.0, k).color(&BLACK))
                .set_all_tick_mark_size(wi(4.0, k))
                .y_desc(panel.y_desc.clone())
                .y_labels(5)
                .x_labels(x_ticks(self.x_range))
                .y_label_formatter(&ytick)
                .x_label_formatter(&xtick);
            if last {
                mesh.x_desc(self.x_desc.clone());
            }
            mesh.draw()?;
            let mut any_label = false;
            for line in &panel.lines {
                let colour = line.colour.rgb().mix(line.opacity);
                let style = colour.stroke_width(w(line.width, k));
                let pts: Vec<(f64, f64)> = line.points.iter().copied().filter(|p| p.1.is_finite()).collect();
                let lw = wi(22.0, k);
                let legend_style = style;
                let dashed = line.dashed;
                let anno = if line.dashed {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), wi(7.0, k), wi(5.0, k), style))?
                } else {
                    chart.draw_series(LineSeries::new(pts.clone(), style))?
                };
                if let Some(label) = &line.label {
                    any_label = true;
                    anno.label(label.clone()).legend(move |(x, y)| {
                        let seg = if dashed { lw / 2 } else { lw };
                        PathElement::new(vec![(x, y), (x + seg, y)], legend_style)
                    });
                }
                if line.marker > 0.0 {
                    let r = wi(line.marker, k);
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, r, colour.filled())))?;
                }
            }
            if any_label {
                chart
                    .configure_series_labels()
                    .position(if panel.legend_at_bottom {
                        SeriesLabelPosition::LowerRight
                    } else {
                        SeriesLabelPosition::UpperRight
                    })
                    .margin(wi(8.0, k))
                    .legend_area_size(wi(28.0, k))
                    .label_font(font(11.0, k).color(&BLACK))
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(0xbb, 0xbb, 0xbb).stroke_width(w(1.0, k)))
                    .draw()?;
            }
        }
        Ok(())
    }
}

/// At most `max` points: the means of consecutive buckets of `points`.
pub fn decimate(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

const TRAIN: Rgb = Rgb(0x1f, 0x77, 0xb4);
const TEST: Rgb = Rgb(0xff, 0x7f, 0x0e);
const LR: Rgb = Rgb(0x2c, 0xa0, 0x2c);
const REG: Rgb = Rgb(0x94, 0x67, 0xbd);
const AUX: Rgb = Rgb(0x8c, 0x56, 0x4b);

/// Training curves: loss, top-1 and learning rate per epoch (and per step, thin); for augment runs
/// also the test loss and top-1. `None` without any epoch or step line.
pub fn curves_figure(title: &str, kind: RunKind, m: &Metrics) -> Option<PanelFigure> {
    if m.steps.is_empty() && m.epochs.is_empty() {
        return None;
    }
    let spe = m.steps_per_epoch().unwrap_or(1) as f64;
    let step_x = |s: &crate::run::StepLine| f64::from(s.epoch) - 1.0 + (s.step as f64 + 1.0) / spe;
    let max_epoch =
        m.epochs.iter().map(|e| f64::from(e.epoch)).chain(m.steps.iter().map(step_x)).fold(1.0, f64::max).ceil();
    let few = m.epochs.len() <= 30;
    let marker = if few { 2.5 } else { 0.0 };
    let epoch_pts = |f: &dyn Fn(&crate::run::EpochLine) -> Option<f64>, scale: f64| -> Vec<(f64, f64)> {
        m.epochs.iter().filter_map(|e| f(e).map(|v| (f64::from(e.epoch), v * scale))).collect()
    };
    let thin = |label: &str, pts: Vec<(f64, f64)>| Line {
        label: Some(label.into()),
        colour: TRAIN,
        opacity: 0.3,
        width: 1.0,
        dashed: false,
        marker: 0.0,
        points: decimate(&pts, 1500),
    };
    let step_label = if m.steps.len() > 1500 { "train, per step (bucket means)" } else { "train, per step" };
    // The cross entropy where the run logs it (a search's "loss" adds the decay term; a
    // retraining's the auxiliary loss: neither is comparable with the test loss)
    let step_ce = |s: &crate::run::StepLine| s.terms.loss_1.or(s.terms.ce).unwrap_or(s.loss);
    let epoch_ce = |e: &crate::run::EpochLine| e.terms.loss_1.or(e.terms.ce).or(e.train_loss());
    let has_ce = m.steps.iter().any(|s| s.terms.loss_1.or(s.terms.ce).is_some());
    let (what, y_desc) = if has_ce { ("train ce", "cross entropy") } else { ("train", "loss") };

    let mut loss =
        vec![thin(&step_label.replacen("train", what, 1), m.steps.iter().map(|s| (step_x(s), step_ce(s))).collect())];
    let mut top1 = vec![thin(step_label, m.steps.iter().map(|s| (step_x(s), 100.0 * s.top1)).collect())];
    let mut l = Line::new(&format!("{what}, epoch mean"), TRAIN, epoch_pts(&epoch_ce, 1.0));
    l.marker = marker;
    loss.push(l);
    for (label, colour, f) in [
        ("regularisation (loss_2), epoch mean", REG, (|e: &crate::run::EpochLine| e.terms.loss_2) as fn(&_) -> _),
        ("auxiliary head ce, epoch mean", AUX, |e: &crate::run::EpochLine| e.terms.ce_aux),
    ] {
        let pts = epoch_pts(&f, 1.0);
        if !pts.is_empty() {
            let mut l = Line::new(label, colour, pts);
            l.marker = marker;
            l.dashed = true;
            loss.push(l);
        }
    }
    let mut l = Line::new("train, epoch mean", TRAIN, epoch_pts(&|e| e.train_top1(), 100.0));
    l.marker = marker;
    top1.push(l);
    if kind == RunKind::Augment || m.has_validation() {
        let mut l = Line::new(if has_ce { "test ce" } else { "test" }, TEST, epoch_pts(&|e| e.val_loss, 1.0));
        l.marker = marker;
        loss.push(l);
        let best = m.epochs.iter().filter_map(|e| e.val_top1.map(|v| (v, e.epoch))).fold(
            None,
            |b: Option<(f64, u32)>, (v, e)| if b.is_some_and(|(bv, _)| bv >= v) { b } else { Some((v, e)) },
        );
        let label = match best {
            Some((v, e)) => format!("test (best {:.2}% at epoch {e})", 100.0 * v),
            None => "test".into(),
        };
        let mut l = Line::new(&label, TEST, epoch_pts(&|e| e.val_top1, 100.0));
        l.marker = marker;
        top1.push(l);
    }
    let mut lr_pts = epoch_pts(&|e| e.lr, 1.0);
    if lr_pts.is_empty() {
        // No epoch finished yet: the steps' learning rate.
        lr_pts = m.steps.iter().filter(|s| s.lr.is_finite()).map(|s| (step_x(s), s.lr)).collect();
    }
    let mut lr = Line::new("learning rate", LR, lr_pts);
    lr.label = None;
    lr.marker = marker;
    let lr_max = lr.points.iter().map(|p| p.1).fold(0.0, f64::max);
    Some(PanelFigure {
        title: title.to_string(),
        width: 1000,
        height: 820,
        x_desc: "epoch".into(),
        x_range: (0.0, max_epoch),
        panels: vec![
            Panel { y_desc: y_desc.into(), weight: 1.0, lines: loss, legend_at_bottom: false, y_range: None },
            Panel { y_desc: "top-1 (%)".into(), weight: 1.0, lines: top1, legend_at_bottom: true, y_range: None },
            Panel {
                y_desc: "learning rate".into(),
                weight: 0.5,
                lines: vec![lr],
                legend_at_bottom: false,
                y_range: Some((0.0, if lr_max > 0.0 { lr_max * 1.08 } else { 1.0 })),
            },
        ],
    })
}

/// The collapse monitor of a search over the epochs: skip-connects in the derived cells, the
/// share of parameter-free ops, and the mean entropy of the edges' softmaxed alphas against the
/// uniform level `ln(n_ops)`. `None` unless the epoch lines have them.
pub fn collapse_figure(title: &str, m: &Metrics, n_ops: usize) -> Option<PanelFigure> {
    let rows: Vec<_> = m.epochs.iter().filter(|e| e.skip_connects_normal.is_some()).collect();
    if rows.is_empty() {
        return None;
    }
    let marker = if rows.len() <= 40 { 3.0 } else { 1.5 };
    let series = |label: &str, colour: Rgb, f: &dyn Fn(&crate::run::EpochLine) -> Option<f64>| {
        let mut l =
            Line::new(label, colour, rows.iter().filter_map(|e| f(e).map(|v| (f64::from(e.epoch), v))).collect());
        l.marker = marker;
        l
    };
    let level = |label: &str, y: f64| {
        let x1 = rows.iter().map(|e| f64::from(e.epoch)).fold(1.0, f64::max);
        let mut l = Line::new(label, Rgb(0x44, 0x44, 0x44), vec![(0.0, y), (x1, y)]);
        l.dashed = true;
        l.width = 1.5;
        l
    };
    let skips = vec![
        series("normal cell", TRAIN, &|e| e.skip_connects_normal.map(f64::from)),
        series("reduction cell", TEST, &|e| e.skip_connects_reduce.map(f64::from)),
        level("warning level: 3 in the normal cell", 3.0),
    ];
    let free = vec![
        series("normal cell", TRAIN, &|e| e.param_free_normal),
        series("reduction cell", TEST, &|e| e.param_free_reduce),
        level("warning level: one half", 0.5),
    ];
    let uniform = (n_ops.max(1) as f64).ln();
    let entropy = vec![
        series("normal cell", TRAIN, &|e| e.alpha_entropy_normal),
        series("reduction cell", TEST, &|e| e.alpha_entropy_reduce),
        level(&format!("uniform alphas: ln({n_ops}) = {uniform:.3}"), uniform),
    ];
    let max_epoch = rows.iter().map(|e| e.epoch).max().unwrap_or(1);
    let ent_lo = entropy.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(uniform, f64::min);
    Some(PanelFigure {
        title: title.to_string(),
        width: 900,
        height: 760,
        x_desc: "epoch".into(),
        x_range: (0.0, f64::from(max_epoch).max(1.0)),
        panels: vec![
            Panel {
                y_desc: "skip-connects".into(),
                weight: 1.0,
                lines: skips,
                legend_at_bottom: false,
                y_range: Some((0.0, 8.5)),
            },
            Panel {
                y_desc: "parameter-free share".into(),
                weight: 1.0,
                lines: free,
                legend_at_bottom: false,
                y_range: Some((0.0, 1.05)),
            },
            Panel {
                y_desc: "mean alpha entropy (nats)".into(),
                weight: 1.0,
                lines: entropy,
                legend_at_bottom: true,
                y_range: Some(((ent_lo - 0.05 * uniform).max(0.0), uniform * 1.03)),
            },
        ],
    })
}

/// Measured drop frequency per op group and epoch against the expected `r^(1/4)`. `None` unless
/// the epoch lines have the drop frequencies (DropNAS search runs).
pub fn drop_freq_figure(title: &str, m: &Metrics) -> Option<PanelFigure> {
    let rows: Vec<_> =
        m.epochs.iter().filter(|e| e.drop_freq_param.is_some() || e.drop_freq_nonparam.is_some()).collect();
    if rows.is_empty() {
        return None;
    }
    let groups = [
        (
            "parameterised ops",
            TRAIN,
            rows.iter().map(|e| (e.epoch, e.drop_freq_param, e.drop_rate_param)).collect::<Vec<_>>(),
        ),
        (
            "non-parameterised ops",
            TEST,
            rows.iter().map(|e| (e.epoch, e.drop_freq_nonparam, e.drop_rate_nonparam)).collect::<Vec<_>>(),
        ),
    ];
    let few = rows.len() <= 40;
    let expected_of = |data: &[(u32, Option<f64>, Option<f64>)]| -> Vec<(f64, f64)> {
        data.iter().filter_map(|&(e, _, r)| r.map(|r| (f64::from(e), r.max(0.0).powf(0.25)))).collect()
    };
    // One expected line when both groups have the same rate (the original's single r).
    let same = expected_of(&groups[0].2) == expected_of(&groups[1].2);
    let mut lines = Vec::new();
    for (g, (name, colour, data)) in groups.iter().enumerate() {
        let measured: Vec<(f64, f64)> = data.iter().filter_map(|&(e, f, _)| f.map(|f| (f64::from(e), f))).collect();
        let mut l = Line::new(&format!("{name}, measured"), *colour, measured);
        l.marker = if few { 3.0 } else { 1.5 };
        lines.push(l);
        let expected = expected_of(data);
        if expected.is_empty() || (same && g == 1) {
            continue;
        }
        let value = expected.last().map(|p| format!(" = {:.3}", p.1)).unwrap_or_default();
        let (label, c) = if same {
            (format!("expected r^(1/4){value}, both groups"), Rgb(0x44, 0x44, 0x44))
        } else {
            (format!("{name}, expected r^(1/4){value}"), colour.darken(0.3))
        };
        let mut l = Line::new(&label, c, expected);
        l.dashed = true;
        l.width = 1.5;
        lines.push(l);
    }
    let hi = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let max_epoch = rows.iter().map(|e| e.epoch).max().unwrap_or(1);
    Some(PanelFigure {
        title: title.to_string(),
        width: 900,
        height: 460,
        x_desc: "epoch".into(),
        x_range: (0.0, f64::from(max_epoch).max(1.0)),
        panels: vec![Panel {
            y_desc: "share of ops dropped".into(),
            weight: 1.0,
            lines,
            legend_at_bottom: true,
            y_range: Some((0.0, if hi > 0.0 { hi * 1.35 } else { 1.0 })),
        }],
    })
}

/// Softmaxed alphas of every edge over the epochs: for each cell type a grid with a row per node
/// and a column per input state, a line per op; edges the genotype keeps are framed in the colour
/// of their op.
#[derive(Debug, Clone)]
pub struct AlphaFigure {
    pub title: String,
    pub ops: Vec<String>,
    /// `(epoch, normal rows, reduce rows)`.
    pub epochs: Vec<u32>,
    pub normal: Vec<Vec<Vec<f64>>>,
    pub reduce: Vec<Vec<Vec<f64>>>,
    pub genotype: Option<Genotype>,
    pub n_nodes: usize,
}

const PANEL_W: f64 = 132.0;
const PANEL_H: f64 = 96.0;
const PANEL_GAP: f64 = 16.0;
const ROW_HEAD: f64 = 64.0;
const Y_TICKS: f64 = 34.0;
const X_TICKS: f64 = 20.0;
const COL_HEAD: f64 = 22.0;
const GRID_GAP: f64 = 36.0;

/// `None` without alphas; errors if the rows aren't a whole number of nodes.
pub fn alpha_figure(title: &str, alphas: &[AlphaLine], genotype: Option<&Genotype>) -> Option<AlphaFigure> {
    let first = alphas.first()?;
    // 2 + 3 + ... + (n + 1) edges for n nodes.
    let n_edges = first.normal.len();
    let mut n_nodes = 0;
    let mut total = 0;
    while total < n_edges {
        total += n_nodes + 2;
        n_nodes += 1;
    }
    if total != n_edges || first.reduce.len() != n_edges {
        return None;
    }
    Some(AlphaFigure {
        title: title.to_string(),
        ops: first.ops.clone(),
        epochs: alphas.iter().map(|a| a.epoch).collect(),
        normal: alphas.iter().map(|a| a.normal.clone()).collect(),
        reduce: alphas.iter().map(|a| a.reduce.clone()).collect(),
        genotype: genotype.cloned(),
        n_nodes,
    })
}

impl AlphaFigure {
    fn grid_w(&self) -> f64 {
        ROW_HEAD + Y_TICKS + (self.n_nodes + 1) as f64 * (PANEL_W + PANEL_GAP)
    }

    pub fn size(&self) -> (u32, u32) {
        let w = 2.0 * self.grid_w() + GRID_GAP + 20.0;
        let h = 40.0 + 34.0 + 26.0 + COL_HEAD + self.n_nodes as f64 * (PANEL_H + PANEL_GAP) + X_TICKS + 26.0;
        (w.ceil() as u32, h.ceil() as u32)
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, k: f64) -> Result<(), DrawError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let black = RGBColor(0x11, 0x11, 0x11);
        let left = |s: f64| font(s, k).color(&black).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            self.title.clone(),
            (wi(16.0, k), wi(20.0, k)),
            bold(15.0, k).color(&black).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        // Legend: a swatch and the name of each op, in column order.
        let colours = column_colours(&self.ops);
        let names = column_names(&self.ops);
        let mut x = 16.0;
        let ly = 50.0;
        for (name, c) in names.iter().zip(&colours) {
            root.draw(&PathElement::new(
                vec![(wi(x, k), wi(ly, k)), (wi(x + 22.0, k), wi(ly, k))],
                c.rgb().stroke_width(w(3.0, k)),
            ))?;
            root.draw(&Text::new(name.clone(), (wi(x + 28.0, k), wi(ly, k)), left(12.0)))?;
            x += 28.0 + text_w(name, 12.0) + 20.0;
        }
        let note = "framed: edge kept by the genotype (frame in the colour of its op)";
        root.draw(&Text::new(
            note.to_string(),
            (wi(x + 10.0, k), wi(ly, k)),
            font(11.0, k).color(&RGBColor(0x55, 0x55, 0x55)).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;

        // The y axis spans the data (and the uniform level 1/n_ops, drawn dashed): early in a
        // search every alpha sits within a few thousandths of uniform, which a fixed 0..1 axis
        // would draw as one flat line.
        let uniform = 1.0 / self.ops.len().max(1) as f64;
        let (lo, hi) = self
            .normal
            .iter()
            .chain(&self.reduce)
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold((uniform, uniform), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = ((hi - lo) * 0.08).max(1e-4);
        let (y_min, y_max) = ((lo - pad).max(0.0), (hi + pad).min(1.0));
        let digits = ((-(y_max - y_min).log10()).ceil() as i32 + 1).clamp(1, 5) as usize;
        let e0 = f64::from(*self.epochs.first().unwrap_or(&1));
        let e1 = f64::from(*self.epochs.last().unwrap_or(&1));
        let (x0, x1) = if e1 > e0 { (e0, e1) } else { (e0 - 0.5, e0 + 0.5) };

        for (g, (cell, data)) in
            [("normal cell", &self.normal), ("reduction cell", &self.reduce)].into_iter().enumerate()
        {
            let gx = 16.0 + g as f64 * (self.grid_w() + GRID_GAP);
            let gy = 74.0;
            root.draw(&Text::new(
                cell.to_string(),
                (wi(gx, k), wi(gy + 10.0, k)),
                bold(14.0, k).color(&black).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            let px0 = gx + ROW_HEAD + Y_TICKS;
            let py0 = gy + 26.0 + COL_HEAD;
            for j in 0..self.n_nodes + 1 {
                let head = match j {
                    0 => "from c_{k-2}".to_string(),
                    1 => "from c_{k-1}".to_string(),
                    j => format!("from node {}", j - 2),
                };
                let cx = px0 + j as f64 * (PANEL_W + PANEL_GAP) + PANEL_W / 2.0;
                root.draw(&Text::new(
                    head,
                    (wi(cx, k), wi(py0 - COL_HEAD / 2.0, k)),
                    font(11.5, k).color(&black).pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
            }
            let kept: Vec<Vec<(usize, String)>> = match &self.genotype {
                Some(gt) => gt
                    .cell(g == 1)
                    .0
                    .iter()
                    .map(|es| es.iter().map(|(op, j)| (*j, op.name().to_string())).collect())
                    .collect(),
                None => Vec::new(),
            };
            let mut edge = 0;
            for i in 0..self.n_nodes {
                let ry = py0 + i as f64 * (PANEL_H + PANEL_GAP);
                root.draw(&Text::new(format!("node {i}"), (wi(gx, k), wi(ry + PANEL_H / 2.0, k)), left(12.5)))?;
                for j in 0..i + 2 {
                    let bottom = i + 1 == self.n_nodes;
                    let first_col = j == 0;
                    let rx = px0 + j as f64 * (PANEL_W + PANEL_GAP);
                    let area_x0 = if first_col { rx - Y_TICKS } else { rx };
                    let area_y1 = if bottom { ry + PANEL_H + X_TICKS } else { ry + PANEL_H };
                    let area = root.clone().shrink(
                        (wi(area_x0, k), wi(ry, k)),
                        (wi(rx + PANEL_W - area_x0, k) as u32, wi(area_y1 - ry, k) as u32),
                    );
                    let mut chart = ChartBuilder::on(&area)
                        .x_label_area_size(if bottom { wi(X_TICKS, k) } else { 0 })
                        .y_label_area_size(if first_col { wi(Y_TICKS, k) } else { 0 })
                        .build_cartesian_2d(x0..x1, y_min..y_max)?;
                    let xt = |v: &f64| format!("{}", v.round() as i64);
                    let yt = |v: &f64| format!("{v:.digits$}");
                    chart
                        .configure_mesh()
                        .light_line_style(TRANSPARENT)
                        .bold_line_style(RGBColor(0xee, 0xee, 0xee).stroke_width(w(1.0, k)))
                        .axis_style(RGBColor(0x99, 0x99, 0x99).stroke_width(w(1.0, k)))
                        .label_style(font(9.5, k).color(&RGBColor(0x44, 0x44, 0x44)))
                        .set_all_tick_mark_size(wi(3.0, k))
                        .x_labels(4)
                        .y_labels(3)
                        .x_label_formatter(&xt)
                        .y_label_formatter(&yt)
                        .draw()?;
                    let grey = RGBColor(0x88, 0x88, 0x88).stroke_width(w(1.0, k));
                    chart.draw_series(DashedLineSeries::new(
                        [(x0, uniform), (x1, uniform)],
                        wi(4.0, k),
                        wi(3.0, k),
                        grey,
                    ))?;
                    for (c, colour) in colours.iter().enumerate() {
                        let pts: Vec<(f64, f64)> = self
                            .epochs
                            .iter()
                            .zip(data)
                            .filter_map(|(e, rows)| rows.get(edge).and_then(|r| r.get(c)).map(|v| (f64::from(*e), *v)))
                            .collect();
                        let style = colour.rgb().stroke_width(w(1.6, k));
                        if pts.len() == 1 {
                            chart
                                .draw_series(pts.iter().map(|&p| Circle::new(p, wi(2.5, k), colour.rgb().filled())))?;
                        } else {
                            chart.draw_series(LineSeries::new(pts, style))?;
                        }
                    }
                    if let Some((_, op)) = kept.get(i).and_then(|es| es.iter().find(|(s, _)| *s == j)) {
                        let (xr, yr) = chart.plotting_area().get_pixel_range();
                        let t = w(2.5, k);
                        let frame = Rectangle::new(
                            [(xr.start, yr.start), (xr.end - 1, yr.end - 1)],
                            op_colour(op).rgb().stroke_width(t),
                        );
                        root.draw(&frame)?;
                        // the chosen op and its last weight, against the uniform level
                        let last = data
                            .last()
                            .and_then(|rows| rows.get(edge))
                            .and_then(|r| self.ops.iter().position(|o| o == op).and_then(|c| r.get(c)).copied());
                        if let Some(v) = last {
                            let label = format!("{op} {v:.3} ({:+.0}%)", 100.0 * (v / uniform - 1.0));
                            root.draw(&Text::new(
                                label,
                                (xr.start + wi(4.0, k), yr.start + wi(8.0, k)),
                                font(9.0, k).color(&black).pos(Pos::new(HPos::Left, VPos::Center)),
                            ))?;
                        }
                    }
                    edge += 1;
                }
            }
        }
        let fh = self.size().1;
        root.draw(&Text::new(
            format!(
                "epoch (x) vs softmax weight of each op (y, spanning the data); dashed: the uniform level 1/{} = {uniform:.4}",
                self.ops.len()
            ),
            (wi(16.0, k), wi(f64::from(fh) - 14.0, k)),
            font(11.0, k).color(&RGBColor(0x55, 0x55, 0x55)).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        Ok(())
    }
}

/// Width of `text` in px at `px` (em).
pub fn text_w(text: &str, px: f64) -> f64 {
    ensure_fonts();
    font(px, 1.0).box_size(text).map(|(w, _)| f64::from(w)).unwrap_or(text.chars().count() as f64 * px * 0.65)
}

/// Writes `dir/STEM.svg` and `dir/STEM.png` of a panel figure.
pub fn write_panel_figure(
    fig: &PanelFigure,
    dir: &std::path::Path,
    stem: &str,
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let svg = render_svg(fig.width, fig.height, |r, k| fig.draw(r, k))?;
    let png = render_png(fig.width, fig.height, 1, |r, k| fig.draw(r, k))?;
    write_pair(dir, stem, &svg, &png)
}

/// Writes `dir/STEM.svg` and `dir/STEM.png` of the alpha figure.
pub fn write_alpha_figure(
    fig: &AlphaFigure,
    dir: &std::path::Path,
    stem: &str,
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let (w, h) = fig.size();
    let svg = render_svg(w, h, |r, k| fig.draw(r, k))?;
    let png = render_png(w, h, 1, |r, k| fig.draw(r, k))?;
    write_pair(dir, stem, &svg, &png)
}

fn write_pair(
    dir: &std::path::Path,
    stem: &str,
    svg: &str,
    png: &[u8],
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let a = dir.join(format!("{stem}.svg"));
    crate::write_atomic(&a, svg.as_bytes())?;
    let b = dir.join(format!("{stem}.png"));
    crate::write_atomic(&b, png)?;
    Ok(vec![a, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_averages_buckets() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64)).collect();
        assert_eq!(decimate(&pts, 20), pts);
        assert_eq!(decimate(&pts, 5), vec![(0.5, 0.5), (2.5, 2.5), (4.5, 4.5), (6.5, 6.5), (8.5, 8.5)]);
    }

    #[test]
    fn repeated_ops_get_their_own_names_and_colours() {
        let ops: Vec<String> = ["skip_connect", "skip_connect", "none"].iter().map(|s| s.to_string()).collect();
        assert_eq!(column_names(&ops), ["skip_connect", "skip_connect #2", "none"]);
        let c = column_colours(&ops);
        assert_ne!(c[0], c[1]);
    }
}
