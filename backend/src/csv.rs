//! Reading the small numeric CSV data sets the examples use (one header row, numbers).

use std::fmt;
use std::path::{Path, PathBuf};

/// A numeric table: the header and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The column names from the first non-empty line, trimmed.
    pub header: Vec<String>,
    /// One vector per data line, in the header's column order.
    pub rows: Vec<Vec<f64>>,
}

/// Why a CSV file could not be read as a [`Table`].
#[derive(Debug)]
pub enum CsvError {
    /// The file could not be read.
    Io {
        /// The file asked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A field is not a number.
    Parse {
        /// The line, counting from 1 (blank lines included).
        line: usize,
        /// The field's column name.
        column: String,
        /// The field as written.
        value: String,
    },
    /// A line has a different number of fields than the header.
    Width {
        /// The line, counting from 1 (blank lines included).
        line: usize,
        /// The header's number of columns.
        expected: usize,
        /// The line's number of fields.
        got: usize,
    },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            CsvError::Parse {
                line,
                column,
                value,
            } => {
                write!(
                    f,
                    "line {line}, column `{column}`: `{value}` is not a number"
                )
            }
            CsvError::Width {
                line,
                expected,
                got,
            } => {
                write!(
                    f,
                    "line {line} has {got} fields but the header has {expected}"
                )
            }
        }
    }
}

impl std::error::Error for CsvError {}

impl Table {
    /// Reads and parses the file at `path` (see [`Table::parse`]).
    pub fn read(path: impl AsRef<Path>) -> Result<Table, CsvError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses comma-separated text: a header line, then lines of numbers; blank lines are skipped.
    pub fn parse(text: &str) -> Result<Table, CsvError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .map(|(_, l)| l.split(',').map(|h| h.trim().to_string()).collect())
            .unwrap_or_default();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != header.len() {
                return Err(CsvError::Width {
                    line: i + 1,
                    expected: header.len(),
                    got: fields.len(),
                });
            }
            let row = fields
                .iter()
                .zip(&header)
                .map(|(v, h)| {
                    v.trim().parse::<f64>().map_err(|_| CsvError::Parse {
                        line: i + 1,
                        column: h.clone(),
                        value: v.to_string(),
                    })
                })
                .collect::<Result<Vec<f64>, _>>()?;
            rows.push(row);
        }
        Ok(Table { header, rows })
    }

    /// The number of data rows (the header not counted).
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// The column named `name`, one value per row; `None` if the header has no such column.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.header.iter().position(|h| h == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
    }

    /// The rows without the named columns.
    pub fn columns_except(&self, names: &[&str]) -> Vec<Vec<f64>> {
        let keep: Vec<usize> = (0..self.header.len())
            .filter(|&j| !names.contains(&self.header[j].as_str()))
            .collect();
        self.rows
            .iter()
            .map(|r| keep.iter().map(|&j| r[j]).collect())
            .collect()
    }
}

/// Centres `v` and scales it to population standard deviation 1 (ddof = 0); a constant
/// vector is only centred.
pub fn zscore(v: &mut [f64]) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    for x in v.iter_mut() {
        *x -= mean;
        if sd > 0.0 {
            *x /= sd;
        }
    }
}

/// [`zscore`] applied to every column of row-major `rows`.
pub fn zscore_columns(rows: &mut [Vec<f64>]) {
    let cols = rows.first().map_or(0, Vec::len);
    for j in 0..cols {
        let mut col: Vec<f64> = rows.iter().map(|r| r[j]).collect();
        zscore(&mut col);
        for (r, v) in rows.iter_mut().zip(col) {
            r[j] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_errors() {
        let t = Table::parse("a,b\n1,2.5\n3,4\n\n").unwrap();
        assert_eq!(t.n_rows(), 2);
        assert_eq!(t.column("b"), Some(vec![2.5, 4.0]));
        assert_eq!(t.columns_except(&["b"]), vec![vec![1.0], vec![3.0]]);
        let e = Table::parse("a,b\n1,x\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2, column `b`: `x` is not a number");
        let e = Table::parse("a,b\n1\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2 has 1 fields but the header has 2");
        assert!(Table::read("/nonexistent/file.csv").is_err());
    }

    #[test]
    fn zscore_gives_population_moments() {
        let mut rows = vec![vec![1.0, 5.0], vec![2.0, 5.0], vec![6.0, 5.0]];
        zscore_columns(&mut rows);
        let c: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        let mean = c.iter().sum::<f64>() / 3.0;
        let var = c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        assert!(
            rows.iter().all(|r| r[1] == 0.0),
            "a constant column is only centred"
        );
    }
}
