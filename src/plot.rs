//! PNG figures of a fit, with the `plot` feature: the ELBO per step ([`elbo_trace`]), the
//! marginal posterior of chosen sites ([`marginals`]) and, for a regression on one input, the
//! data under the predictive mean and a shaded band ([`predictive_band`], or several:
//! [`predictive_bands`]; a band from [`crate::predictive()`] or from draws: [`Band`]).
//!
//! ```no_run
//! # fn main() -> Result<(), ravi::plot::PlotError> {
//! # let report: Vec<f32> = vec![];
//! # let posterior = ravi::Posterior { sites: vec![], draws: vec![] };
//! # let (x, y, grid, predictive) = (vec![0.0], vec![0.0], vec![0.0], ravi::SitePredictive::Continuous { site: "y", mean: vec![0.0], sd: vec![1.0] });
//! ravi::plot::elbo_trace(&report, "target/elbo.png")?; // a `FitReport` or its `elbo`
//! ravi::plot::marginals(&posterior, &["sigma", "w[0]"], "target/marginals.png")?;
//! let band = ravi::plot::Band::from_predictive(&grid, &predictive, 0.9)?;
//! ravi::plot::predictive_band(&x, &y, &band, "target/band.png")?;
//! # Ok(())
//! # }
//! ```
//!
//! Every function writes one PNG (the path's extension must be `.png`) and returns a
//! [`PlotError`] for input it cannot draw (an unknown site, an empty trace, lengths that
//! disagree, nothing finite) or a file it cannot write; none panics. Non-finite values are
//! left out of a figure, and its title or legend says how many.
//!
//! Text uses no system font: `plot/DejaVuSans-ascii.ttf` beside this file (DejaVu Sans 2.37
//! cut down to printable ASCII with fontTools; Bitstream Vera licence, DejaVu changes public
//! domain; the full notice is kept in the font's own `name` table, record 13) is compiled in
//! and registered with `plotters`' `ab_glyph` renderer as "sans-serif". Only ASCII text
//! renders, so site names are best kept ASCII.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{FitReport, Posterior, SiteDraws, SitePredictive};

/// The pixel size of [`elbo_trace`]'s figure.
pub const TRACE_SIZE: (u32, u32) = (1000, 600);
/// The pixel size of [`predictive_band`]'s figure.
pub const BAND_SIZE: (u32, u32) = (1000, 600);
/// The pixel size of one panel of [`marginals`]; the figure is [`PANEL_COLUMNS`] panels wide
/// (fewer when there are fewer panels) and as many rows high as the panels need.
pub const PANEL_SIZE: (u32, u32) = (400, 300);
/// Panels per row in [`marginals`].
pub const PANEL_COLUMNS: usize = 3;
/// Elements of a vector site that [`marginals`] draws when given the site's bare name (the
/// first ones, row-major); name an element (`"w[7]"`) to draw another.
pub const MAX_ELEMENTS: usize = 6;
/// Bins of each histogram in [`marginals`].
const BINS: usize = 40;

/// The embedded font (see the module docs for its licence).
const FONT: &[u8] = include_bytes!("plot/DejaVuSans-ascii.ttf");

/// Why a figure was not written.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PlotError {
    /// The posterior has no site (or tracked value) of this name.
    UnknownSite {
        /// The name asked for.
        site: String,
        /// The names the posterior has.
        known: Vec<String>,
    },
    /// An element index (`"w[7]"`, `"w[1, 2]"`) that the site does not have, or that does not
    /// parse.
    NoSuchElement {
        /// The site.
        site: String,
        /// The index as written.
        index: String,
        /// The site's shape.
        shape: Vec<usize>,
    },
    /// Nothing to draw: an empty trace, no site named, no draws, no data.
    Empty {
        /// What was empty.
        what: String,
    },
    /// Every value was NaN or infinite.
    NoFiniteValues {
        /// Whose values.
        what: String,
    },
    /// Inputs that go together have different lengths.
    LengthMismatch {
        /// Which input.
        what: String,
        /// The length it should have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// A band's probability level outside (0, 1).
    Level(f64),
    /// A predictive with no mean and sd per value (class or Bernoulli probabilities): a band
    /// is drawn from a [`SitePredictive::Continuous`] only.
    NotContinuous {
        /// The observed site.
        site: String,
    },
    /// Drawing or writing the file failed (a missing folder, an extension other than `.png`,
    /// a full disk).
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong, as the drawing library says it.
        message: String,
    },
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::UnknownSite { site, known } => write!(
                f,
                "no site `{site}` in the posterior (its sites: {})",
                known.join(", ")
            ),
            PlotError::NoSuchElement { site, index, shape } => write!(
                f,
                "site `{site}` of shape {shape:?} has no element [{index}] (give one flat \
                 index or one per axis, from 0)"
            ),
            PlotError::Empty { what } => write!(f, "nothing to plot: {what} is empty"),
            PlotError::NoFiniteValues { what } => {
                write!(
                    f,
                    "nothing to plot: every value of {what} is NaN or infinite"
                )
            }
            PlotError::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what} has {found} values where {expected} are needed"),
            PlotError::Level(level) => {
                write!(f, "band level {level} is not a probability in (0, 1)")
            }
            PlotError::NotContinuous { site } => write!(
                f,
                "the predictive of `{site}` is class or Bernoulli probabilities, not a mean and \
                 sd per value: no band to draw"
            ),
            PlotError::Write { path, message } => {
                write!(f, "could not write {}: {message}", path.display())
            }
        }
    }
}

impl StdError for PlotError {}

/// A sequence of ELBO estimates, one per step: a [`FitReport`] (its `elbo`) or the values
/// themselves.
pub trait Trace {
    /// The ELBO estimate of each step.
    fn elbo_values(&self) -> &[f32];
}

impl Trace for FitReport {
    fn elbo_values(&self) -> &[f32] {
        &self.elbo
    }
}

impl Trace for [f32] {
    fn elbo_values(&self) -> &[f32] {
        self
    }
}

impl Trace for Vec<f32> {
    fn elbo_values(&self) -> &[f32] {
        self
    }
}

impl<const N: usize> Trace for [f32; N] {
    fn elbo_values(&self) -> &[f32] {
        self
    }
}

/// A band over a grid of inputs: the predictive mean and a lower and an upper bound at each
/// `x`, for [`predictive_band`]. Any order of `x` will do (the plot sorts it).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// The inputs.
    pub x: Vec<f64>,
    /// The mean at each input.
    pub mean: Vec<f64>,
    /// The band's lower edge at each input.
    pub lower: Vec<f64>,
    /// The band's upper edge at each input.
    pub upper: Vec<f64>,
    /// What the band is, for the legend (`"90% predictive interval"`).
    pub label: String,
}

impl Band {
    /// A band from its parts, labelled `label` in the legend; the four vectors must have the
    /// same length.
    pub fn new(
        x: Vec<f64>,
        mean: Vec<f64>,
        lower: Vec<f64>,
        upper: Vec<f64>,
        label: impl Into<String>,
    ) -> Result<Band, PlotError> {
        for (what, v) in [("mean", &mean), ("lower", &lower), ("upper", &upper)] {
            same_length(&format!("the band's {what}"), x.len(), v.len())?;
        }
        Ok(Band {
            x,
            mean,
            lower,
            upper,
            label: label.into(),
        })
    }

    /// The central `level` interval (0.9: from the 5% to the 95% point) of a continuous
    /// predictive ([`crate::predictive()`] on data whose inputs are `x`), taken as Gaussian
    /// with the predictive's mean and sd: mean ± z sd, z the standard normal's
    /// (1 + level) / 2 quantile (1.645 for 0.9).
    pub fn from_predictive(
        x: &[f64],
        predictive: &SitePredictive,
        level: f64,
    ) -> Result<Band, PlotError> {
        let z = normal_quantile(0.5 + check_level(level)? / 2.0);
        let SitePredictive::Continuous { site, mean, sd } = predictive else {
            return Err(PlotError::NotContinuous {
                site: predictive.site().to_string(),
            });
        };
        same_length(&format!("the predictive of `{site}`"), x.len(), mean.len())?;
        Band::new(
            x.to_vec(),
            mean.clone(),
            mean.iter().zip(sd).map(|(m, s)| m - z * s).collect(),
            mean.iter().zip(sd).map(|(m, s)| m + z * s).collect(),
            format!("{}% predictive interval", percent(level)),
        )
    }

    /// The mean and central `level` interval (quantiles of the draws) of a vector site or
    /// tracked value of `posterior` with one element per `x` (a `track f = ..` of the model,
    /// drawn with [`Posterior::with_data`] at those inputs): the band of the function
    /// itself, without the observation noise.
    pub fn from_draws(
        x: &[f64],
        posterior: &Posterior,
        site: &str,
        level: f64,
    ) -> Result<Band, PlotError> {
        let level = check_level(level)?;
        let summary = find_site(posterior, site)?;
        same_length(&format!("site `{site}`"), x.len(), summary.mean.len())?;
        let bound = |q: f64| -> Vec<f64> {
            posterior
                .quantile(site, q)
                .unwrap_or_default()
                .into_iter()
                .map(f64::from)
                .collect()
        };
        Band::new(
            x.to_vec(),
            summary.mean.iter().map(|&m| f64::from(m)).collect(),
            bound(0.5 - level / 2.0),
            bound(0.5 + level / 2.0),
            format!("{}% interval of `{site}`", percent(level)),
        )
    }
}

impl Band {
    /// The band of predictive draws ([`crate::predictive_draws`]) of a site at the inputs
    /// `x`: the draws' mean and their central `level` interval (quantiles, no Gaussian
    /// approximation).
    pub fn from_site_draws(x: &[f64], draws: &SiteDraws, level: f64) -> Result<Band, PlotError> {
        let level = check_level(level)?;
        let mean = draws.mean();
        same_length(
            &format!("the draws of `{}`", draws.site),
            x.len(),
            mean.len(),
        )?;
        Band::new(
            x.to_vec(),
            mean,
            draws.quantile(0.5 - level / 2.0),
            draws.quantile(0.5 + level / 2.0),
            format!(
                "{}% predictive interval of `{}`",
                percent(level),
                draws.site
            ),
        )
    }
}

/// Writes a [`TRACE_SIZE`] PNG of the ELBO estimate of every step (a thin line) and its
/// running mean over the last `max(1, steps / 50)` steps (a thick one, where the trend
/// shows), step on the x axis. The y axis spans the 2% quantile of the estimates to their
/// maximum, so a start far below the rest does not squash it (lower estimates are drawn at
/// the bottom edge); NaN and infinite estimates (skipped steps) are left out.
///
/// ```no_run
/// # fn f(report: ravi::FitReport) -> Result<(), ravi::plot::PlotError> {
/// ravi::plot::elbo_trace(&report, "target/elbo.png")?;
/// ravi::plot::elbo_trace(&report.elbo[1000..], "target/elbo_tail.png")?;
/// # Ok(()) }
/// ```
pub fn elbo_trace<T: Trace + ?Sized>(trace: &T, path: impl AsRef<Path>) -> Result<(), PlotError> {
    let path = path.as_ref();
    let values = trace.elbo_values();
    if values.is_empty() {
        return Err(PlotError::Empty {
            what: "the ELBO trace".into(),
        });
    }
    let points: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i as f64, f64::from(v)))
        .collect();
    if points.is_empty() {
        return Err(PlotError::NoFiniteValues {
            what: "the ELBO trace".into(),
        });
    }
    let window = (values.len() / 50).max(1);
    let running = running_mean(&points, window);
    let mut sorted: Vec<f64> = points.iter().map(|p| p.1).collect();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = padded(quantile_sorted(&sorted, 0.02), sorted[sorted.len() - 1]);
    let x_max = (values.len().max(2) - 1) as f64;
    let skipped = values.len() - points.len();
    let title = if skipped > 0 {
        format!(
            "ELBO per step ({skipped} non-finite {} left out)",
            plural(skipped, "estimate")
        )
    } else {
        "ELBO per step".to_string()
    };
    let clamp = |(x, y): (f64, f64)| (x, y.clamp(lo, hi));
    draw(path, TRACE_SIZE, |root| {
        let mut chart = figure_chart(root, &title, 90, (0.0, x_max, "step"), (lo, hi, "ELBO"))?;
        let raw = RGBColor(120, 160, 210);
        chart
            .draw_series(LineSeries::new(points.iter().copied().map(clamp), raw))?
            .label("estimate per step")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], raw));
        let trend = RGBColor(200, 40, 30);
        chart
            .draw_series(LineSeries::new(
                running.iter().copied().map(clamp),
                trend.stroke_width(3),
            ))?
            .label(format!("running mean over {window} steps"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], trend.stroke_width(3)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Writes a PNG of a histogram (scaled to a density) of the draws of each chosen site, one
/// panel per element: a scalar site's panel, the first [`MAX_ELEMENTS`] elements of a
/// vector site named bare (`"w"`), or one element (`"w[3]"`, a flat row-major index, or
/// `"w[1, 2]"`, one per axis). Each panel is titled with the element and its mean and sd,
/// and marks the mean (solid) and the 5% and 95% quantiles (dashed). The figure is
/// [`PANEL_SIZE`] per panel, [`PANEL_COLUMNS`] panels a row. Non-finite draws are left out.
///
/// ```no_run
/// # fn f(posterior: ravi::Posterior) -> Result<(), ravi::plot::PlotError> {
/// ravi::plot::marginals(&posterior, &["mu", "tau", "theta[0]"], "target/marginals.png")?;
/// # Ok(()) }
/// ```
pub fn marginals(
    posterior: &Posterior,
    sites: &[&str],
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    if sites.is_empty() {
        return Err(PlotError::Empty {
            what: "the list of sites".into(),
        });
    }
    let mut panels = Vec::new();
    for name in sites {
        for (label, values) in panel_values(posterior, name)? {
            let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
            if finite.is_empty() {
                return Err(PlotError::NoFiniteValues {
                    what: format!("the draws of {label}"),
                });
            }
            panels.push((label, finite));
        }
    }
    let cols = panels.len().min(PANEL_COLUMNS);
    let rows = panels.len().div_ceil(cols);
    let size = (
        PANEL_SIZE.0 * cols as u32,
        PANEL_SIZE.1 * u32::try_from(rows).unwrap_or(u32::MAX / PANEL_SIZE.1),
    );
    draw(path, size, |root| {
        for (area, (label, values)) in root.split_evenly((rows, cols)).iter().zip(&panels) {
            histogram(area, label, values)?;
        }
        Ok(())
    })
}

/// Writes a [`BAND_SIZE`] PNG of a regression on one input: the observed points `(x, y)`,
/// the band's mean as a line and its interval shaded, over the band's inputs in increasing
/// order (a [`Band`] from [`crate::predictive()`] at a grid of new inputs, say). Points or
/// grid entries with a non-finite value are left out.
///
/// ```no_run
/// # fn f(x: Vec<f64>, y: Vec<f64>, grid: Vec<f64>, p: ravi::SitePredictive) -> Result<(), ravi::plot::PlotError> {
/// let band = ravi::plot::Band::from_predictive(&grid, &p, 0.9)?;
/// ravi::plot::predictive_band(&x, &y, &band, "target/band.png")?;
/// # Ok(()) }
/// ```
pub fn predictive_band(
    x: &[f64],
    y: &[f64],
    band: &Band,
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    predictive_bands(x, y, std::slice::from_ref(band), path)
}

/// [`predictive_band`] with several bands over one figure, each shaded in its own colour
/// (the first lightest; draw the widest first), and the first band's mean as the line: the
/// predictive's band with the noise and the function's band without it (a `track`ed value,
/// [`Band::from_draws`]), say.
pub fn predictive_bands(
    x: &[f64],
    y: &[f64],
    bands: &[Band],
    path: impl AsRef<Path>,
) -> Result<(), PlotError> {
    let path = path.as_ref();
    same_length("the observed y", x.len(), y.len())?;
    if bands.is_empty() {
        return Err(PlotError::Empty {
            what: "the list of bands".into(),
        });
    }
    let mut grids = Vec::with_capacity(bands.len());
    let mut left_out = 0;
    for band in bands {
        for (what, v) in [
            ("mean", &band.mean),
            ("lower", &band.lower),
            ("upper", &band.upper),
        ] {
            same_length(
                &format!("the {what} of band `{}`", band.label),
                band.x.len(),
                v.len(),
            )?;
        }
        if band.x.is_empty() {
            return Err(PlotError::Empty {
                what: format!("band `{}`", band.label),
            });
        }
        let mut grid: Vec<[f64; 4]> = (0..band.x.len())
            .map(|i| [band.x[i], band.mean[i], band.lower[i], band.upper[i]])
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .collect();
        if grid.is_empty() {
            return Err(PlotError::NoFiniteValues {
                what: format!("band `{}`", band.label),
            });
        }
        grid.sort_by(|a, b| a[0].total_cmp(&b[0]));
        left_out += band.x.len() - grid.len();
        grids.push(grid);
    }
    let data: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a, b))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    left_out += x.len() - data.len();
    let xs = grids
        .iter()
        .flatten()
        .map(|r| r[0])
        .chain(data.iter().map(|p| p.0));
    let ys = grids
        .iter()
        .flatten()
        .flat_map(|r| [r[1], r[2], r[3]])
        .chain(data.iter().map(|p| p.1));
    let (x_lo, x_hi) = min_max(xs);
    let (y_lo, y_hi) = min_max(ys);
    let (x_lo, x_hi) = padded(x_lo, x_hi);
    let (y_lo, y_hi) = padded(y_lo, y_hi);
    let title = if left_out > 0 {
        format!(
            "Posterior predictive ({left_out} non-finite {} left out)",
            plural(left_out, "value")
        )
    } else {
        "Posterior predictive".to_string()
    };
    // the legend goes where it hides the fewest points and band edges
    let marks = grids
        .iter()
        .flatten()
        .flat_map(|r| [(r[0], r[1]), (r[0], r[2]), (r[0], r[3])])
        .chain(data.iter().copied());
    let corner = quiet_corner(marks, (x_lo, x_hi), (y_lo, y_hi));
    draw(path, BAND_SIZE, |root| {
        let mut chart = figure_chart(root, &title, 80, (x_lo, x_hi, "x"), (y_lo, y_hi, "y"))?;
        const SHADES: [RGBColor; 3] = [
            RGBColor(120, 170, 230),
            RGBColor(40, 90, 180),
            RGBColor(230, 140, 40),
        ];
        for (k, (band, grid)) in bands.iter().zip(&grids).enumerate() {
            let fill = SHADES[k % SHADES.len()].mix(0.35).filled();
            let outline: Vec<(f64, f64)> = grid
                .iter()
                .map(|r| (r[0], r[3]))
                .chain(grid.iter().rev().map(|r| (r[0], r[2])))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(outline, fill)))?
                .label(band.label.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], fill));
        }
        let line = RGBColor(20, 50, 130);
        chart
            .draw_series(LineSeries::new(
                grids[0].iter().map(|r| (r[0], r[1])),
                line.stroke_width(3),
            ))?
            .label("mean")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], line.stroke_width(3)));
        if !data.is_empty() {
            chart
                .draw_series(
                    data.iter()
                        .map(|&p| Circle::new(p, 3, BLACK.mix(0.8).filled())),
                )?
                .label("observed")
                .legend(|(x, y)| Circle::new((x + 10, y), 3, BLACK.mix(0.8).filled()));
        }
        chart
            .configure_series_labels()
            .position(corner)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The corner of the plot area whose box (the outer 40% of the width, 25% of the height)
/// holds the fewest of `points`: where a legend hides least. Ties go to the upper right,
/// then upper left, lower right, lower left.
fn quiet_corner(
    points: impl Iterator<Item = (f64, f64)>,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
) -> SeriesLabelPosition {
    let (dx, dy) = (0.4 * (x_hi - x_lo), 0.25 * (y_hi - y_lo));
    let mut counts = [0usize; 4];
    for (x, y) in points {
        let (right, left) = (x >= x_hi - dx, x <= x_lo + dx);
        let (top, bottom) = (y >= y_hi - dy, y <= y_lo + dy);
        for (k, inside) in [top && right, top && left, bottom && right, bottom && left]
            .into_iter()
            .enumerate()
        {
            counts[k] += usize::from(inside);
        }
    }
    let best = (0..4).min_by_key(|&k| counts[k]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// A chart filling a whole figure, titled, with named axes from `lo` to `hi` each,
/// labelled to the decimals their spans need (`y_area`: the pixels its labels take).
fn figure_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    y_area: u32,
    (x_lo, x_hi, x_name): (f64, f64, &str),
    (y_lo, y_hi, y_name): (f64, f64, &str),
) -> Result<
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn StdError>,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    let (xd, yd) = (decimals(x_hi - x_lo), decimals(y_hi - y_lo));
    chart
        .configure_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{x:.xd$}"))
        .y_label_formatter(&|y| format!("{y:.yd$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    Ok(chart)
}

/// One panel's histogram of `values` (finite, not empty), titled `label`.
fn histogram(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    label: &str,
    values: &[f64],
) -> Result<(), Box<dyn StdError>> {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = padded(sorted[0], sorted[sorted.len() - 1]);
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    for v in values {
        let bin = ((v - lo) / width).floor() as usize; // a float cast saturates
        counts[bin.min(BINS - 1)] += 1;
    }
    let density = |c: usize| c as f64 / (n * width);
    let top = counts.iter().map(|&c| density(c)).fold(0.0, f64::max) * 1.1;
    let top = if top.is_finite() && top > 0.0 {
        top
    } else {
        1.0
    };
    let dx = decimals(hi - lo);
    let dy = decimals(top);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{label}: {mean:.p$} +- {sd:.p$}",
                p = decimals(sd.max(1e-12))
            ),
            ("sans-serif", 17),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(4)
        .label_style(("sans-serif", 12))
        .x_label_formatter(&|x| format!("{x:.dx$}"))
        .y_label_formatter(&|y| format!("{y:.dy$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let fill = RGBColor(70, 130, 200);
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = lo + i as f64 * width;
        Rectangle::new(
            [(x0, 0.0), (x0 + width, density(c))],
            fill.mix(0.6).filled(),
        )
    }))?;
    let at = |x: f64, style: ShapeStyle| PathElement::new([(x, 0.0), (x, top)], style);
    let red = RGBColor(200, 40, 30);
    chart.draw_series(std::iter::once(at(mean, red.stroke_width(2))))?;
    for q in [0.05, 0.95] {
        let x = quantile_sorted(&sorted, q);
        chart.draw_series(DashedLineSeries::new(
            [(x, 0.0), (x, top)],
            6,
            4,
            red.stroke_width(1),
        ))?;
    }
    Ok(())
}

/// The panels a name asks for: `(label, draws)` of each element.
fn panel_values(posterior: &Posterior, name: &str) -> Result<Vec<(String, Vec<f64>)>, PlotError> {
    let (site, index) = match name.split_once('[') {
        Some((site, rest)) => (site.trim(), Some(rest.trim_end().trim_end_matches(']'))),
        None => (name.trim(), None),
    };
    let summary = find_site(posterior, site)?;
    let k = posterior
        .sites
        .iter()
        .position(|s| std::ptr::eq(s, summary))
        .unwrap_or(0);
    let draws = posterior.draws.get(k).map(Vec::as_slice).unwrap_or(&[]);
    let numel = summary.mean.len();
    if draws.is_empty() || numel == 0 {
        return Err(PlotError::Empty {
            what: format!("the draws of `{site}`"),
        });
    }
    let elements: Vec<usize> = match index {
        Some(index) => vec![flat_index(index, &summary.shape, numel).ok_or_else(|| {
            PlotError::NoSuchElement {
                site: site.to_string(),
                index: index.to_string(),
                shape: summary.shape.clone(),
            }
        })?],
        None => (0..numel.min(MAX_ELEMENTS)).collect(),
    };
    Ok(elements
        .into_iter()
        .map(|e| {
            let label = if summary.shape.iter().product::<usize>() <= 1 && numel == 1 {
                site.to_string()
            } else {
                format!("{site}[{}]", unravel(e, &summary.shape, numel))
            };
            let values = draws
                .iter()
                .map(|d| d.get(e).map_or(f64::NAN, |&v| f64::from(v)))
                .collect();
            (label, values)
        })
        .collect())
}

/// The flat element of `index` ("7" or "1, 2"), if the site has it.
fn flat_index(index: &str, shape: &[usize], numel: usize) -> Option<usize> {
    let parts: Vec<usize> = index
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    let flat = match parts.as_slice() {
        [i] => *i,
        _ if parts.len() == shape.len() && parts.iter().zip(shape).all(|(i, n)| i < n) => {
            parts.iter().zip(shape).fold(0, |acc, (i, n)| acc * n + i)
        }
        _ => return None,
    };
    (flat < numel).then_some(flat)
}

/// `flat` written as one index per axis of `shape` ("1, 2"), or flat where the shape does
/// not hold `numel` elements.
fn unravel(flat: usize, shape: &[usize], numel: usize) -> String {
    if shape.len() <= 1 || shape.iter().product::<usize>() != numel {
        return flat.to_string();
    }
    let mut rest = flat;
    let mut parts = vec![0; shape.len()];
    for (p, n) in parts.iter_mut().zip(shape).rev() {
        *p = rest % n;
        rest /= n;
    }
    parts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary of `site`, or the typed error listing the known names.
fn find_site<'a>(
    posterior: &'a Posterior,
    site: &str,
) -> Result<&'a crate::SiteSummary, PlotError> {
    posterior.site(site).ok_or_else(|| PlotError::UnknownSite {
        site: site.to_string(),
        known: posterior.sites.iter().map(|s| s.name.to_string()).collect(),
    })
}

/// Draws a figure of `size` into `path` with `body`, and writes it.
fn draw(
    path: &Path,
    size: (u32, u32),
    body: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), Box<dyn StdError>>,
) -> Result<(), PlotError> {
    let failed = |e: &dyn fmt::Display| PlotError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if path.extension().and_then(|e| e.to_str()) != Some("png") {
        return Err(failed(&"the file name must end in .png"));
    }
    register_font().map_err(|e| failed(&e))?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let drawn = root
        .fill(&WHITE)
        .map_err(|e| Box::new(e) as Box<dyn StdError>)
        .and_then(|()| body(&root))
        .and_then(|()| root.present().map_err(|e| Box::new(e) as Box<dyn StdError>));
    drawn.map_err(|e| failed(&e))
}

/// Registers the embedded font as "sans-serif" (once).
fn register_font() -> Result<(), &'static str> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FontFamily::SansSerif.as_str(), FontStyle::Normal, FONT)
            .is_ok()
    });
    ok.then_some(()).ok_or("the embedded font failed to parse")
}

fn same_length(what: &str, expected: usize, found: usize) -> Result<(), PlotError> {
    if expected == found {
        Ok(())
    } else {
        Err(PlotError::LengthMismatch {
            what: what.to_string(),
            expected,
            found,
        })
    }
}

fn check_level(level: f64) -> Result<f64, PlotError> {
    if level > 0.0 && level < 1.0 {
        Ok(level)
    } else {
        Err(PlotError::Level(level))
    }
}

/// `word` with an `s` unless `n` is 1.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// `level` in percent, without a needless decimal (90, 99.5).
fn percent(level: f64) -> String {
    let p = level * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round())
    } else {
        format!("{p}")
    }
}

/// The running mean of `points`' values over the last `window` points (fewer at the start).
fn running_mean(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// The smallest and largest of finite values (not empty).
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// `[lo, hi]` widened by 5% on each side, or by 1 (or a tenth of its size) around a single
/// value, so an axis never has zero width; `[0, 1]` for a non-finite range.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        (0.1 * lo.abs()).max(1.0)
    };
    (lo - pad, hi + pad)
}

/// The `q`-quantile of sorted values (not empty), linear between neighbours.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (i, frac) = (h.floor() as usize, h - h.floor());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + frac * (next - sorted[i])
}

/// Decimals for tick labels on an axis spanning `span`: enough to tell ticks apart, no more.
fn decimals(span: f64) -> usize {
    if span.is_finite() && span > 0.0 {
        (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    }
}

/// The standard normal quantile function at `p` in (0, 1) (Acklam's rational approximation:
/// relative error below 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SiteSummary;

    /// A fresh folder for one test's files, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(test: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("ravi-plot-{}-{test}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The PNG's width and height, after checking its signature and header chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is no PNG",
            path.display()
        );
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// A site's name, shape and draws (`draws[draw][element]`).
    type TestSite = (&'static str, Vec<usize>, Vec<Vec<f32>>);

    /// A posterior of the given sites and draws (`draws[draw][element]`), summarised by
    /// the mean only.
    fn posterior(sites: Vec<TestSite>) -> Posterior {
        let mut post = Posterior {
            sites: vec![],
            draws: vec![],
        };
        for (name, shape, draws) in sites {
            let numel = draws[0].len();
            let mean = (0..numel)
                .map(|e| draws.iter().map(|d| d[e]).sum::<f32>() / draws.len() as f32)
                .collect::<Vec<_>>();
            post.sites.push(SiteSummary {
                name,
                shape,
                mean: mean.clone(),
                sd: mean.clone(),
                median: mean.clone(),
                q05: mean.clone(),
                q95: mean,
            });
            post.draws.push(draws);
        }
        post
    }

    /// Draws of a scalar `sigma`, a `[2, 4]` site `w` and a constant `c`.
    fn example_posterior() -> Posterior {
        let n = 500;
        let wave = |i: usize, k: f32| ((i as f32 * 0.37 + k).sin() + 1.0) * 0.5;
        posterior(vec![
            (
                "sigma",
                vec![],
                (0..n).map(|i| vec![0.1 + wave(i, 0.0)]).collect(),
            ),
            (
                "w",
                vec![2, 4],
                (0..n)
                    .map(|i| (0..8).map(|e| e as f32 + wave(i, e as f32)).collect())
                    .collect(),
            ),
            ("c", vec![], vec![vec![2.5]; n]),
        ])
    }

    #[test]
    fn the_elbo_trace_is_a_png_of_its_size() {
        let dir = Dir::new("trace");
        let path = dir.join("elbo.png");
        // a start far below the rest, noise, and a skipped (NaN) step
        let mut trace: Vec<f32> = (0..3000)
            .map(|i| -100.0 - 5000.0 / (1.0 + i as f32) + (i as f32 * 1.3).sin())
            .collect();
        trace[10] = f32::NAN;
        trace[20] = f32::NEG_INFINITY;
        elbo_trace(&trace, &path).unwrap();
        assert_eq!(png_size(&path), TRACE_SIZE);
        // a slice, a single step and an array do too
        elbo_trace(&trace[..1], &path).unwrap();
        elbo_trace(&[1.0f32, 1.0, 1.0], &path).unwrap();
        assert_eq!(png_size(&path), TRACE_SIZE);
    }

    #[test]
    fn a_bad_trace_is_a_typed_error() {
        let dir = Dir::new("bad-trace");
        let path = dir.join("elbo.png");
        let empty: Vec<f32> = vec![];
        assert!(matches!(
            elbo_trace(&empty, &path),
            Err(PlotError::Empty { .. })
        ));
        assert!(matches!(
            elbo_trace(&[f32::NAN, f32::INFINITY], &path),
            Err(PlotError::NoFiniteValues { .. })
        ));
        assert!(!path.exists());
        // a folder that is not there, and a file that is not a PNG: the error names the path
        let missing = dir.join("no/such/folder/elbo.png");
        match elbo_trace(&[1.0f32, 2.0], &missing) {
            Err(PlotError::Write { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        let jpeg = dir.join("elbo.jpg");
        let err = elbo_trace(&[1.0f32, 2.0], &jpeg).unwrap_err();
        assert!(matches!(&err, PlotError::Write { path, .. } if *path == jpeg));
        assert!(err.to_string().contains("elbo.jpg"), "{err}");
    }

    #[test]
    fn marginals_draw_a_panel_per_element() {
        let post = example_posterior();
        let dir = Dir::new("marginals");
        let path = dir.join("marginals.png");
        // sigma, the first 6 of w's 8 elements, w[1, 2] and the constant: 9 panels, 3 rows
        marginals(&post, &["sigma", "w", "w[1, 2]", "c"], &path).unwrap();
        assert_eq!(png_size(&path), (3 * PANEL_SIZE.0, 3 * PANEL_SIZE.1));
        // one panel: one panel's size
        marginals(&post, &["w[7]"], &path).unwrap();
        assert_eq!(png_size(&path), PANEL_SIZE);
        marginals(&post, &["sigma", "w[0]"], &path).unwrap();
        assert_eq!(png_size(&path), (2 * PANEL_SIZE.0, PANEL_SIZE.1));
    }

    #[test]
    fn marginals_of_what_is_not_there_are_typed_errors() {
        let post = example_posterior();
        let dir = Dir::new("bad-marginals");
        let path = dir.join("marginals.png");
        match marginals(&post, &["sigma", "tau"], &path) {
            Err(PlotError::UnknownSite { site, known }) => {
                assert_eq!(site, "tau");
                assert_eq!(known, ["sigma", "w", "c"]);
            }
            other => panic!("{other:?}"),
        }
        for bad in ["w[8]", "w[2, 0]", "w[x]", "w[0, 0, 0]"] {
            assert!(
                matches!(
                    marginals(&post, &[bad], &path),
                    Err(PlotError::NoSuchElement { ref site, .. }) if site == "w"
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            marginals(&post, &[], &path),
            Err(PlotError::Empty { .. })
        ));
        let nan = posterior(vec![("z", vec![], vec![vec![f32::NAN]; 10])]);
        assert!(matches!(
            marginals(&nan, &["z"], &path),
            Err(PlotError::NoFiniteValues { .. })
        ));
        let none = posterior(vec![]);
        assert!(matches!(
            marginals(&none, &["z"], &path),
            Err(PlotError::UnknownSite { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn the_predictive_band_is_a_png_of_its_size() {
        let dir = Dir::new("band");
        let path = dir.join("band.png");
        let x: Vec<f64> = (0..50).map(|i| -1.0 + i as f64 / 25.0).collect();
        let y: Vec<f64> = x.iter().map(|x| (3.0 * x).sin()).collect();
        // the grid in decreasing order, with a NaN: sorted and left out
        let grid: Vec<f64> = (0..100)
            .rev()
            .map(|i| -1.5 + 3.0 * i as f64 / 99.0)
            .collect();
        let mut mean: Vec<f64> = grid.iter().map(|x| (3.0 * x).sin()).collect();
        mean[3] = f64::NAN;
        let sd = grid.iter().map(|x| 0.1 + x.abs() * 0.2).collect();
        let p = SitePredictive::Continuous {
            site: "y",
            mean,
            sd,
        };
        let band = Band::from_predictive(&grid, &p, 0.9).unwrap();
        assert_eq!(band.label, "90% predictive interval");
        let z = (band.upper[0] - band.mean[0]) / (0.1 + 1.5 * 0.2);
        assert!((z - 1.6448536269514722).abs() < 1e-8, "{z}");
        predictive_band(&x, &y, &band, &path).unwrap();
        assert_eq!(png_size(&path), BAND_SIZE);
        // no data points: the band alone
        predictive_band(&[], &[], &band, &path).unwrap();
        assert_eq!(png_size(&path), BAND_SIZE);
        // two bands
        let inner = Band::new(
            band.x.clone(),
            band.mean.clone(),
            band.mean.iter().map(|m| m - 0.1).collect(),
            band.mean.iter().map(|m| m + 0.1).collect(),
            "f",
        )
        .unwrap();
        predictive_bands(&x, &y, &[band, inner], &path).unwrap();
        assert_eq!(png_size(&path), BAND_SIZE);
        assert!(matches!(
            predictive_bands(&x, &y, &[], &path),
            Err(PlotError::Empty { .. })
        ));
    }

    #[test]
    fn a_bad_band_is_a_typed_error() {
        let dir = Dir::new("bad-band");
        let path = dir.join("band.png");
        let grid = [0.0, 1.0];
        let p = SitePredictive::Continuous {
            site: "y",
            mean: vec![0.0, 1.0],
            sd: vec![1.0, 1.0],
        };
        assert_eq!(
            Band::from_predictive(&grid, &p, 1.5),
            Err(PlotError::Level(1.5))
        );
        assert!(matches!(
            Band::from_predictive(&grid[..1], &p, 0.9),
            Err(PlotError::LengthMismatch {
                expected: 1,
                found: 2,
                ..
            })
        ));
        let classes = SitePredictive::Binary {
            site: "label",
            probs: vec![0.5, 0.5],
        };
        assert_eq!(
            Band::from_predictive(&grid, &classes, 0.9),
            Err(PlotError::NotContinuous {
                site: "label".into()
            })
        );
        let band = Band::from_predictive(&grid, &p, 0.9).unwrap();
        assert!(matches!(
            predictive_band(&[0.0, 1.0], &[0.0], &band, &path),
            Err(PlotError::LengthMismatch { .. })
        ));
        let nan = Band::new(vec![f64::NAN], vec![0.0], vec![0.0], vec![0.0], "b").unwrap();
        assert!(matches!(
            predictive_band(&[], &[], &nan, &path),
            Err(PlotError::NoFiniteValues { .. })
        ));
        assert!(matches!(
            Band::new(vec![], vec![], vec![], vec![], "b").map(|b| predictive_band(
                &[],
                &[],
                &b,
                &path
            )),
            Ok(Err(PlotError::Empty { .. }))
        ));
        assert!(Band::new(vec![0.0], vec![], vec![], vec![], "b").is_err());
        assert!(!path.exists());
    }

    #[test]
    fn a_band_from_draws_holds_the_quantiles() {
        let draws: Vec<Vec<f32>> = (0..=100).map(|i| vec![i as f32, 2.0 * i as f32]).collect();
        let post = posterior(vec![("f", vec![2], draws)]);
        let band = Band::from_draws(&[0.0, 1.0], &post, "f", 0.9).unwrap();
        assert_eq!(band.mean, [50.0, 100.0]);
        assert!((band.lower[0] - 5.0).abs() < 1e-4 && (band.upper[1] - 190.0).abs() < 1e-3);
        assert!(matches!(
            Band::from_draws(&[0.0, 1.0], &post, "g", 0.9),
            Err(PlotError::UnknownSite { .. })
        ));
        assert!(matches!(
            Band::from_draws(&[0.0], &post, "f", 0.9),
            Err(PlotError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn normal_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.001, -3.090232306167813),
            (0.99, 2.326347874040841),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
        }
    }

    #[test]
    fn running_means_and_ranges() {
        let points: Vec<(f64, f64)> = [1.0, 3.0, 5.0, 7.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v))
            .collect();
        let means: Vec<f64> = running_mean(&points, 2).iter().map(|p| p.1).collect();
        assert_eq!(means, [1.0, 2.0, 4.0, 6.0]);
        assert_eq!(padded(2.0, 2.0), (1.0, 3.0));
        assert_eq!(padded(f64::NAN, 1.0), (0.0, 1.0));
        assert_eq!(unravel(6, &[2, 4], 8), "1, 2");
        assert_eq!(flat_index("1, 2", &[2, 4], 8), Some(6));
        assert_eq!(percent(0.995), "99.5");
        // points at the top right and bottom left: the legend goes to the upper left
        let points = [(0.9, 0.9), (0.95, 0.95), (0.1, 0.1)];
        assert!(matches!(
            quiet_corner(points.into_iter(), (0.0, 1.0), (0.0, 1.0)),
            SeriesLabelPosition::UpperLeft
        ));
    }
}
