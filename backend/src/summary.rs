//! Reading a [`Posterior`]'s draws: any quantile, the highest posterior density interval,
//! a printed table like NumPyro's `print_summary`, and the draws exported as CSV or as
//! JSON in ArviZ's layout (`az.from_dict(**json)`: groups of variables shaped
//! (chain, draw, *site shape)).

use std::fmt::Write as _;

use crate::posterior::{quantile, Posterior};

impl Posterior {
    /// The `q`-quantile (0 ≤ q ≤ 1, one outside taken at the nearest end; linear
    /// interpolation) of each element of `site`.
    pub fn quantile(&self, site: &str, q: f64) -> Option<Vec<f32>> {
        let draws = self.draws_of(site)?;
        Some(
            self.columns(draws)
                .map(|col| quantile(&col, q) as f32)
                .collect(),
        )
    }

    /// The highest posterior density interval holding `prob` of the draws (the shortest
    /// such interval), per element of `site`.
    pub fn hpdi(&self, site: &str, prob: f64) -> Option<Vec<(f32, f32)>> {
        let draws = self.draws_of(site)?;
        Some(
            self.columns(draws)
                .map(|col| {
                    let n = col.len();
                    let k = ((prob.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
                    let best = (0..=n - k)
                        .min_by(|&a, &b| {
                            (col[a + k - 1] - col[a]).total_cmp(&(col[b + k - 1] - col[b]))
                        })
                        .unwrap_or(0);
                    (col[best] as f32, col[best + k - 1] as f32)
                })
                .collect(),
        )
    }

    /// A table of every site and element: mean, sd, median, 5% and 95%, as NumPyro's
    /// `print_summary` prints it.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>20} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "", "mean", "sd", "median", "5.0%", "95.0%"
        );
        for s in &self.sites {
            for i in 0..s.mean.len() {
                let label = if s.mean.len() == 1 && s.shape.is_empty() {
                    s.name.to_string()
                } else {
                    format!("{}[{}]", s.name, index_text(&s.shape, i))
                };
                let _ = writeln!(
                    out,
                    "{label:>20} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
                    s.mean[i], s.sd[i], s.median[i], s.q05[i], s.q95[i]
                );
            }
        }
        out
    }

    /// Prints [`Posterior::summary`].
    ///
    /// # Example
    ///
    /// ```
    /// // `Line`, `LineGuide` and `data` as in the example of `ravi::fit`, and `guide` fitted
    /// # use ravi::prelude::*;
    /// # model! {
    /// #     model Line(x: [N], y: [N]) {
    /// #         a ~ Normal(0.0, 10.0);
    /// #         b ~ Normal(0.0, 10.0);
    /// #         y ~ Normal(a * x + b, 0.5);
    /// #     }
    /// # }
    /// # guide! { guide LineGuide for Line { (a, b) ~ FullRank; } }
    /// # let data = LineData {
    /// #     x: Array::vector(vec![0.0, 1.0, 2.0, 3.0]),
    /// #     y: Array::vector(vec![0.9, 3.1, 4.8, 7.2]),
    /// # };
    /// # let mut guide = LineGuide::new(&Cpu::seeded(0));
    /// # let opts = FitOptions { steps: 300, progress: false, ..FitOptions::default() };
    /// # ravi::fit(&mut guide, &data, &opts)?;
    /// let posterior = Posterior::from_guide(&guide, 4000);
    /// posterior.print_summary(); // a row per element of `a` and `b`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn print_summary(&self) {
        print!("{}", self.summary());
    }

    /// The draws as CSV: a header `site[i,j]`, then one row per draw.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self
            .sites
            .iter()
            .flat_map(|s| {
                (0..s.mean.len()).map(move |i| {
                    if s.shape.is_empty() {
                        s.name.to_string()
                    } else {
                        format!("\"{}[{}]\"", s.name, index_text(&s.shape, i))
                    }
                })
            })
            .collect();
        let _ = writeln!(out, "{}", header.join(","));
        let n = self.draws.first().map_or(0, Vec::len);
        for d in 0..n {
            let row: Vec<String> = self
                .draws
                .iter()
                .flat_map(|site| site[d].iter().map(|v| v.to_string()))
                .collect();
            let _ = writeln!(out, "{}", row.join(","));
        }
        out
    }

    /// The draws in ArviZ's layout, one chain: `{"posterior": {site: [[draw...]]},
    /// "dims": {site: ["site_dim_0", ..]}}`, each draw shaped as the site.
    pub fn to_arviz_json(&self) -> serde_json::Value {
        let mut posterior = serde_json::Map::new();
        let mut dims = serde_json::Map::new();
        for (s, draws) in self.sites.iter().zip(&self.draws) {
            let per_draw: Vec<serde_json::Value> =
                draws.iter().map(|d| nest(d, &s.shape)).collect();
            posterior.insert(s.name.to_string(), serde_json::json!([per_draw]));
            let names: Vec<String> = (0..s.shape.len())
                .map(|k| format!("{}_dim_{k}", s.name))
                .collect();
            dims.insert(s.name.to_string(), serde_json::json!(names));
        }
        serde_json::json!({ "posterior": posterior, "dims": dims })
    }

    fn draws_of(&self, site: &str) -> Option<&Vec<Vec<f32>>> {
        let k = self.sites.iter().position(|s| s.name == site)?;
        self.draws.get(k)
    }

    /// Each element's draws, sorted.
    fn columns<'a>(&self, draws: &'a [Vec<f32>]) -> impl Iterator<Item = Vec<f64>> + 'a {
        let numel = draws.first().map_or(0, Vec::len);
        (0..numel).map(move |j| {
            let mut col: Vec<f64> = draws.iter().map(|d| f64::from(d[j])).collect();
            col.sort_by(f64::total_cmp);
            col
        })
    }
}

/// The multi-index of flat element `i` of `shape`, as `a,b`.
fn index_text(shape: &[usize], mut i: usize) -> String {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        idx[k] = i % d.max(1);
        i /= d.max(1);
    }
    idx.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A flat draw as nested arrays of `shape`.
fn nest(values: &[f32], shape: &[usize]) -> serde_json::Value {
    match shape {
        [] => serde_json::json!(values.first().copied().unwrap_or(f32::NAN)),
        [_] => serde_json::json!(values),
        [d, rest @ ..] => {
            let step = values.len() / (*d).max(1);
            serde_json::Value::Array(values.chunks(step.max(1)).map(|c| nest(c, rest)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posterior::SiteSummary;

    fn posterior() -> Posterior {
        // a site of shape [2]: element 0 draws 1..=100, element 1 draws their squares / 100
        let draws: Vec<Vec<f32>> = (1..=100)
            .map(|i| vec![i as f32, (i * i) as f32 / 100.0])
            .collect();
        let mut p = Posterior {
            sites: Vec::new(),
            draws: Vec::new(),
        };
        p.sites.push(SiteSummary {
            name: "w",
            shape: vec![2],
            mean: vec![50.5, 33.835],
            sd: vec![0.0, 0.0],
            median: vec![50.5, 25.5],
            q05: vec![0.0, 0.0],
            q95: vec![0.0, 0.0],
        });
        p.draws.push(draws);
        p
    }

    #[test]
    fn quantiles_and_the_shortest_interval() {
        let p = posterior();
        assert_eq!(p.quantile("w", 0.5).unwrap()[0], 50.5);
        assert_eq!(p.quantile("w", 1.0).unwrap()[0], 100.0);
        // uniform draws: every 90% window is as wide; the skewed element's is at the bottom
        let h = p.hpdi("w", 0.9).unwrap();
        assert_eq!(h[0].1 - h[0].0, 89.0);
        assert_eq!(h[1], (0.01, 81.0));
        assert!(p.quantile("nope", 0.5).is_none());
    }

    #[test]
    fn exports_hold_every_draw() {
        let p = posterior();
        let csv = p.to_csv();
        assert_eq!(csv.lines().count(), 101);
        assert!(csv.starts_with("\"w[0]\",\"w[1]\""));
        let json = p.to_arviz_json();
        assert_eq!(json["posterior"]["w"][0].as_array().unwrap().len(), 100);
        assert_eq!(json["posterior"]["w"][0][99][0], 100.0);
        assert!(p.summary().contains("w[1]"));
    }
}
