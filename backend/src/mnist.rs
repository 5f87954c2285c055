//! MNIST in its original IDX format (gzip-compressed, as bundled in `data/mnist/`): the
//! 60,000 training and 10,000 test images of 28 × 28 handwritten digits and their labels.
//! Every way a file can be wrong is a typed error naming the file: not there, not gzip, a
//! wrong magic number, fewer bytes than its header promises, images and labels that do
//! not pair up.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::data::Array;

/// What went wrong reading an MNIST file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MnistError {
    /// The file could not be read (or decompressed).
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O or decompression error, in words.
        message: String,
    },
    /// The header's magic number is not the one the file kind has (2051 for images, 2049
    /// for labels).
    Magic {
        /// The file.
        path: PathBuf,
        /// The magic number in the file.
        found: u32,
        /// The magic number its kind has.
        expected: u32,
    },
    /// The file holds fewer bytes than its header says.
    Truncated {
        /// The file.
        path: PathBuf,
        /// The bytes its header promises (decompressed).
        expected: usize,
        /// The bytes it holds (decompressed).
        found: usize,
    },
    /// The images and labels files hold different counts.
    Counts {
        /// The images file.
        images: PathBuf,
        /// The number of images it holds.
        image_count: usize,
        /// The labels file.
        labels: PathBuf,
        /// The number of labels it holds.
        label_count: usize,
    },
}

impl fmt::Display for MnistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MnistError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            MnistError::Magic {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: magic number {found} where an IDX file of this kind has {expected}",
                path.display()
            ),
            MnistError::Truncated {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: its header promises {expected} bytes but it holds {found}",
                path.display()
            ),
            MnistError::Counts {
                images,
                image_count,
                labels,
                label_count,
            } => write!(
                f,
                "{} holds {image_count} images but {} holds {label_count} labels",
                images.display(),
                labels.display()
            ),
        }
    }
}

impl std::error::Error for MnistError {}

/// Images (row-major pixels 0–255, `rows × cols` each) and their labels 0–9.
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// Every image's pixels, image after image, each row-major (`len() · rows · cols` bytes).
    pub pixels: Vec<u8>,
    /// One label 0–9 per image.
    pub labels: Vec<u8>,
    /// Pixel rows per image (28 for MNIST).
    pub rows: usize,
    /// Pixel columns per image (28 for MNIST).
    pub cols: usize,
}

impl Digits {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels scaled to [0, 1], `[n, rows · cols]`.
    pub fn intensities(&self) -> Array {
        let data = self.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        self.array(data)
    }

    /// Pixels binarized: 1 where the intensity is above `threshold` (0.5 is the usual
    /// fixed binarization), else 0; `[n, rows · cols]`.
    pub fn binarized(&self, threshold: f32) -> Array {
        let data = self
            .pixels
            .iter()
            .map(|&p| f32::from(f32::from(p) / 255.0 > threshold))
            .collect();
        self.array(data)
    }

    /// The labels as numbers, `[n]`.
    pub fn label_array(&self) -> Array {
        Array::vector(self.labels.iter().map(|&l| f32::from(l)).collect())
    }

    /// The first `n` images (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Digits {
        let n = n.min(self.len());
        let per = self.rows * self.cols;
        Digits {
            pixels: self.pixels[..n * per].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    fn array(&self, data: Vec<f32>) -> Array {
        Array::new(data, vec![self.len(), self.rows * self.cols])
            .expect("the pixels are n · rows · cols, checked when read")
    }
}

/// MNIST's two parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// The 60,000 training images.
    pub train: Digits,
    /// The 10,000 test images.
    pub test: Digits,
}

/// Reads `train-images.idx3-ubyte.gz`, `train-labels.idx1-ubyte.gz`,
/// `t10k-images.idx3-ubyte.gz` and `t10k-labels.idx1-ubyte.gz` from `dir`.
pub fn load(dir: impl AsRef<Path>) -> Result<Mnist, MnistError> {
    let dir = dir.as_ref();
    let part = |name: &str| {
        read_pair(
            &dir.join(format!("{name}-images.idx3-ubyte.gz")),
            &dir.join(format!("{name}-labels.idx1-ubyte.gz")),
        )
    };
    Ok(Mnist {
        train: part("train")?,
        test: part("t10k")?,
    })
}

/// An images file and its labels file, paired.
pub fn read_pair(images: &Path, labels: &Path) -> Result<Digits, MnistError> {
    let (pixels, n_images, rows, cols) = parse_images(images, &gunzip(images)?)?;
    let labels_bytes = parse_labels(labels, &gunzip(labels)?)?;
    if labels_bytes.len() != n_images {
        return Err(MnistError::Counts {
            images: images.to_path_buf(),
            image_count: n_images,
            labels: labels.to_path_buf(),
            label_count: labels_bytes.len(),
        });
    }
    Ok(Digits {
        pixels,
        labels: labels_bytes,
        rows,
        cols,
    })
}

fn gunzip(path: &Path) -> Result<Vec<u8>, MnistError> {
    let io = |e: std::io::Error| MnistError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(io)?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// An IDX file's header words, checked: its magic, then `words` sizes.
fn header(path: &Path, bytes: &[u8], magic: u32, words: usize) -> Result<Vec<usize>, MnistError> {
    let truncated = |expected: usize| MnistError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: bytes.len(),
    };
    let found = be_u32(bytes, 0).ok_or_else(|| truncated(4 * (words + 1)))?;
    if found != magic {
        return Err(MnistError::Magic {
            path: path.to_path_buf(),
            found,
            expected: magic,
        });
    }
    (0..words)
        .map(|k| {
            be_u32(bytes, 4 + 4 * k)
                .map(|v| v as usize)
                .ok_or_else(|| truncated(4 * (words + 1)))
        })
        .collect()
}

/// Pixels, count, rows and columns of an images file (magic 2051).
fn parse_images(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, usize, usize, usize), MnistError> {
    let h = header(path, bytes, 2051, 3)?;
    let (n, rows, cols) = (h[0], h[1], h[2]);
    let need = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .and_then(|v| v.checked_add(16))
        .unwrap_or(usize::MAX);
    if bytes.len() < need {
        return Err(MnistError::Truncated {
            path: path.to_path_buf(),
            expected: need,
            found: bytes.len(),
        });
    }
    Ok((bytes[16..need].to_vec(), n, rows, cols))
}

/// The labels of a labels file (magic 2049).
fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, MnistError> {
    let n = header(path, bytes, 2049, 1)?[0];
    let need = n.saturating_add(8);
    if bytes.len() < need {
        return Err(MnistError::Truncated {
            path: path.to_path_buf(),
            expected: need,
            found: bytes.len(),
        });
    }
    Ok(bytes[8..need].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [2051, n, rows, cols] {
            b.extend(w.to_be_bytes());
        }
        b.extend(pixels);
        b
    }

    #[test]
    fn a_small_file_reads_and_bad_ones_are_named() {
        let p = Path::new("x.gz");
        let ok = idx_images(2, 2, 2, &[0, 255, 128, 127, 1, 2, 3, 4]);
        let (px, n, r, c) = parse_images(p, &ok).unwrap();
        assert_eq!((n, r, c, px.len()), (2, 2, 2, 8));
        let short = idx_images(3, 2, 2, &[0; 8]);
        assert!(matches!(
            parse_images(p, &short),
            Err(MnistError::Truncated {
                expected: 28,
                found: 24,
                ..
            })
        ));
        let mut wrong = ok.clone();
        wrong[3] = 1;
        assert!(matches!(
            parse_images(p, &wrong),
            Err(MnistError::Magic {
                found: 2049,
                expected: 2051,
                ..
            })
        ));
        assert!(matches!(
            parse_images(p, &[0, 0]),
            Err(MnistError::Truncated { .. })
        ));
        let digits = Digits {
            pixels: px,
            labels: vec![3, 7],
            rows: 2,
            cols: 2,
        };
        assert_eq!(
            digits.binarized(0.5).data(),
            &[0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!((digits.intensities().data()[1] - 1.0).abs() < 1e-6);
    }
}
