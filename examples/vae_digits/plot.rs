//! PNG figures for the VAE example: a grid of grayscale images ([`image_grid`]) and a line
//! chart of training curves ([`curve`]), drawn with `plotters`' bitmap backend.
//!
//! Text uses no system font: `src/plot/DejaVuSans-ascii.ttf` (DejaVu Sans 2.37 cut down to
//! printable ASCII with fontTools; Bitstream Vera licence, DejaVu changes public domain; the
//! full notice is kept in the font's own `name` table, record 13; the font of `ravi::plot` too)
//! is compiled in and registered with `plotters`' `ab_glyph` renderer as "sans-serif". Only
//! ASCII text renders; other characters are left out.

use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

/// The embedded font (see the module docs for its licence).
const FONT: &[u8] = include_bytes!("../../src/plot/DejaVuSans-ascii.ttf");
/// Longest series drawn point by point; longer ones are averaged down to at most this many points.
const MAX_POINTS: usize = 2000;

/// Writes a PNG of grayscale `width`×`height` images (row-major, one `f32` per pixel) laid out in
/// a grid of `cols` per row, each pixel drawn as a `scale`×`scale` block. Values are clamped to
/// [0, 1], 0 drawn black and 1 white (as MNIST is usually shown; NaN is drawn black). Images are
/// separated, and the grid framed, by a one-block (`scale` pixels) light blue-grey gap, a colour
/// no pixel value takes. Unfilled cells of the last row are left in the gap colour.
pub fn image_grid(
    path: &Path,
    images: &[Vec<f32>],
    width: usize,
    height: usize,
    cols: usize,
    scale: usize,
) -> Result<(), Box<dyn Error>> {
    if images.is_empty() || width == 0 || height == 0 || cols == 0 || scale == 0 {
        return Err("image_grid: need at least one image and non-zero sizes".into());
    }
    if let Some(i) = images.iter().position(|im| im.len() != width * height) {
        return Err(format!("image_grid: image {i} is not {width}x{height}").into());
    }
    let cols = cols.min(images.len());
    let rows = images.len().div_ceil(cols);
    let (cell_w, cell_h) = ((width + 1) * scale, (height + 1) * scale);
    let (w, h) = (cols * cell_w + scale, rows * cell_h + scale);
    let mut rgb = [190u8, 200, 215].repeat(w * h);
    for (k, im) in images.iter().enumerate() {
        let (x0, y0) = ((k % cols) * cell_w + scale, (k / cols) * cell_h + scale);
        for (p, &v) in im.iter().enumerate() {
            let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8; // NaN saturates to 0
            for y in y0 + (p / width) * scale..y0 + (p / width + 1) * scale {
                let row = y * w + x0 + (p % width) * scale;
                rgb[3 * row..3 * (row + scale)].fill(g);
            }
        }
    }
    let size = (u32::try_from(w)?, u32::try_from(h)?);
    let mut backend = BitMapBackend::new(path, size);
    backend.blit_bitmap((0, 0), size, &rgb)?;
    backend.present()?;
    Ok(())
}

/// Writes a 1000×600 PNG line chart of `series` (each a legend name and its y values, plotted at
/// x = 1..=len) with `title`, axis labels, tick labels and a legend (in the right-hand corner
/// away from the end of the first series). The y axis is linear and spans the finite values
/// (non-finite ones are ignored; an early outlier squashes the rest). A series longer than 2000 points is
/// cut into consecutive windows of `ceil(len / 2000)` steps, each drawn as one point: the mean
/// of its finite values, at the window's mean step, so long noisy curves come out smoothed.
pub fn curve(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &[f32])],
) -> Result<(), Box<dyn Error>> {
    plotters::style::register_font(FontFamily::SansSerif.as_str(), FontStyle::Normal, FONT)
        .map_err(|_| "curve: the embedded font failed to parse")?;
    let lines: Vec<Vec<(f32, f32)>> = series.iter().map(|(_, ys)| downsample(ys)).collect();
    let x_max = series
        .iter()
        .map(|(_, ys)| ys.len().max(2))
        .max()
        .unwrap_or(2) as f32;
    let ys = || lines.iter().flatten().map(|&(_, y)| y);
    let (mut lo, mut hi) = (
        ys().fold(f32::INFINITY, f32::min),
        ys().fold(f32::NEG_INFINITY, f32::max),
    );
    if lo > hi {
        (lo, hi) = (0.0, 1.0); // no finite values at all
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    let (x_dec, y_dec) = (decimals(x_max - 1.0), decimals(hi - lo + 2.0 * pad));
    // The legend goes to the right-hand corner away from where the first series ends.
    let ends_high = lines
        .iter()
        .find_map(|l| l.last())
        .is_some_and(|&(_, y)| y > (lo + hi) / 2.0);
    let corner = if ends_high {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    };

    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(1f32..x_max, lo - pad..hi + pad)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{x:.x_dec$}"))
        .y_label_formatter(&|y| format!("{y:.y_dec$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, ((name, _), line)) in series.iter().zip(&lines).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(corner)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// `(step, value)` points of `ys` (steps from 1), averaged over windows so at most
/// [`MAX_POINTS`] remain; windows (or points) with no finite value are dropped.
fn downsample(ys: &[f32]) -> Vec<(f32, f32)> {
    let window = ys.len().div_ceil(MAX_POINTS).max(1);
    ys.chunks(window)
        .enumerate()
        .filter_map(|(c, chunk)| {
            let finite: Vec<f32> = chunk.iter().copied().filter(|v| v.is_finite()).collect();
            let mean = finite.iter().map(|&v| f64::from(v)).sum::<f64>() / finite.len() as f64;
            let step = (c * window) as f64 + (chunk.len() as f64 + 1.0) / 2.0;
            (!finite.is_empty()).then_some((step as f32, mean as f32))
        })
        .collect()
}

/// Decimals for tick labels on an axis spanning `span`: enough to tell ticks apart, no more.
fn decimals(span: f32) -> usize {
    (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
}
