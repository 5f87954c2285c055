//! Where a fit starts, as the guide's families receive it.

use crate::frame::FrameScale;
use crate::linalg::Matrix;

/// The sd a guide family starts a coordinate at when nothing says better (the scale
/// Pyro's and NumPyro's autoguides start at too): small, so that the first steps are not
/// swamped by noise.
pub const INIT_SCALE: f32 = 0.1;

/// Where the families of a guide start: per latent site (the model's order) its starting
/// values in the guide's unconstrained coordinates, and over the coordinates the Laplace
/// approximation covers, that Gaussian's covariance and the diagonal of its precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Per latent site: its unconstrained values (for a `param`, the point itself); `None`
    /// leaves the site's point mass as it is (a `param` the start says nothing of).
    pub sites: Vec<Option<Vec<f64>>>,
    /// Per latent site, per value: covered by the Laplace approximation.
    pub covered: Vec<Vec<bool>>,
    /// The Laplace approximation's covariance H⁻¹ over the covered coordinates, in the
    /// order of the sites and their values (empty when it covers none).
    pub cov: Matrix,
    /// The diagonal of its precision H: 1/√H_jj is the mean-field optimum's sd for a
    /// Gaussian posterior.
    pub precision_diag: Vec<f64>,
    /// Per latent site, per value: the sd to start an uncovered coordinate at
    /// ([`INIT_SCALE`], or less for a net's weights).
    pub spread: Vec<Vec<f64>>,
}

impl Start {
    /// Values only, no Gaussian (a MAP, a prior median, given values), every scale
    /// [`INIT_SCALE`].
    pub fn values(sites: Vec<Option<Vec<f64>>>) -> Start {
        let covered = sites
            .iter()
            .map(|v| vec![false; v.as_ref().map_or(0, Vec::len)])
            .collect();
        let spread = sites
            .iter()
            .map(|v| vec![f64::from(INIT_SCALE); v.as_ref().map_or(0, Vec::len)])
            .collect();
        Start {
            sites,
            covered,
            cov: Matrix::zeros(0),
            precision_diag: Vec::new(),
            spread,
        }
    }

    /// The same start with the given per-site spreads where they are given.
    pub fn with_spread(mut self, spread: &[Option<Vec<f64>>]) -> Start {
        for (mine, given) in self.spread.iter_mut().zip(spread) {
            if let Some(g) = given {
                if g.len() == mine.len() {
                    mine.clone_from(g);
                }
            }
        }
        self
    }

    /// The start of a family over `sites` (latent indices, concatenated in this order).
    pub fn family(&self, sites: &[usize]) -> FamilyStart {
        // index of each site's first covered coordinate among all covered ones
        let mut first = Vec::with_capacity(self.covered.len());
        let mut at = 0;
        for c in &self.covered {
            first.push(at);
            at += c.iter().filter(|&&b| b).count();
        }
        let mut loc = Vec::new();
        let mut covered = Vec::new();
        let mut global = Vec::new();
        let mut spread = Vec::new();
        for &s in sites {
            let values = self.sites[s]
                .as_ref()
                .expect("every site a family covers has a start");
            loc.extend_from_slice(values);
            let site_spread = &self.spread[s];
            spread.extend(
                (0..values.len())
                    .map(|j| site_spread.get(j).copied().unwrap_or(f64::from(INIT_SCALE))),
            );
            let mut k = first[s];
            let covered_site = &self.covered[s];
            for j in 0..values.len() {
                let c = covered_site.get(j).copied().unwrap_or(false);
                covered.push(c);
                if c {
                    global.push(k);
                    k += 1;
                }
            }
        }
        let n = global.len();
        let mut cov = Matrix::zeros(n);
        for (a, &i) in global.iter().enumerate() {
            for (b, &j) in global.iter().enumerate() {
                cov.set(a, b, self.cov.get(i, j));
            }
        }
        FamilyStart {
            loc,
            covered,
            cov_factor: cov.cholesky_or_diagonal(),
            cov,
            precision_diag: global.iter().map(|&i| self.precision_diag[i]).collect(),
            spread,
        }
    }

    /// A site's starting values, if the start sets them.
    pub fn site(&self, index: usize) -> Option<&[f64]> {
        self.sites[index].as_deref()
    }
}

/// Where one guide family starts, over its coordinates (its sites' values concatenated):
/// each coordinate's location, and for those the Laplace approximation covers the
/// Gaussian to start at. A family that can take a frame ([`crate::frame`]) starts in the
/// frame this Gaussian gives, at N(0, I) over the covered coordinates; the other
/// coordinates (a net's weights, or every one when there is no Gaussian) start at their
/// location with the family's usual scale.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyStart {
    /// Each coordinate's starting location.
    pub loc: Vec<f64>,
    /// Per coordinate: covered by the Laplace approximation.
    pub covered: Vec<bool>,
    /// The covariance over the covered coordinates (in order).
    pub cov: Matrix,
    /// Its lower Cholesky factor (see [`Matrix::cholesky_or_diagonal`]).
    pub cov_factor: Matrix,
    /// The precision's diagonal over the covered coordinates.
    pub precision_diag: Vec<f64>,
    /// Per coordinate, the sd to start it at when it is not covered.
    pub spread: Vec<f64>,
}

impl FamilyStart {
    /// The number of coordinates.
    pub fn dim(&self) -> usize {
        self.loc.len()
    }

    /// Does the Laplace approximation cover any coordinate?
    pub fn has_gaussian(&self) -> bool {
        self.covered.iter().any(|&c| c)
    }

    /// The locations as f32.
    pub fn loc_f32(&self) -> Vec<f32> {
        self.loc.iter().map(|&v| v as f32).collect()
    }

    /// The sd to start each coordinate at in the family's coordinates: 1 where the frame
    /// is the Laplace Gaussian, the coordinate's spread elsewhere.
    pub fn unit_scale(&self) -> Vec<f32> {
        self.covered
            .iter()
            .zip(&self.spread)
            .map(|(&c, &s)| if c { 1.0 } else { s as f32 })
            .collect()
    }

    /// A lower-triangular frame: the covariance's Cholesky factor on the covered
    /// coordinates, the identity elsewhere (an index subset in increasing order keeps a
    /// lower-triangular matrix lower triangular).
    pub fn full_frame(&self) -> FrameScale {
        let d = self.dim();
        let index = self.covered_indices();
        let mut s = Matrix::identity(d);
        for (a, &i) in index.iter().enumerate() {
            for (b, &j) in index.iter().enumerate().take(a + 1) {
                s.set(i, j, self.cov_factor.get(a, b));
            }
        }
        FrameScale::Lower(s)
    }

    /// A diagonal frame with the mean-field optimum's sds 1/√H_jj on the covered
    /// coordinates (exact for a Gaussian posterior), 1 elsewhere.
    pub fn mean_field_frame(&self) -> FrameScale {
        self.diagonal(|a| 1.0 / self.precision_diag[a].sqrt())
    }

    fn diagonal(&self, sd: impl Fn(usize) -> f64) -> FrameScale {
        let mut out = vec![1.0; self.dim()];
        for (a, i) in self.covered_indices().into_iter().enumerate() {
            out[i] = sd(a);
        }
        FrameScale::Diagonal(out)
    }

    /// The covered coordinates' indices.
    pub fn covered_indices(&self) -> Vec<usize> {
        (0..self.dim()).filter(|&i| self.covered[i]).collect()
    }
}
