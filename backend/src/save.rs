//! A fitted guide saved and loaded: its parameters as safetensors (one F32 tensor per
//! parameter, by its name), with metadata — the model's and the guide's names, ravi's
//! version, the constants among the parameters (a start's frames), and a signature of the
//! compiled model and guide — so that loading into another model, or another guide of it,
//! is a typed error that says what differs.
//!
//! Parameter names are stable: `{sites}.loc`, `{sites}.rho`, ... as the families name
//! them (`ParamStore::iter`), in the guide's order; the signature hashes the model's
//! inputs and latent sites (names, shapes, supports) and the guide's parameters (names and
//! sizes), so it changes exactly when a saved file would no longer fit.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::device::Backend;
use crate::fit::Trainer;
use crate::guide::Guide;
use crate::model::Model;
use crate::optim::OptimizerState;

/// What went wrong saving or loading a guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error, in words.
        message: String,
    },
    /// Not a safetensors file ravi wrote (or a damaged one).
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds a guide of another model, or another guide.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs: `"the model"` or `"the guide"`.
        what: &'static str,
        /// The name in the file.
        saved: String,
        /// The name of the model or guide loaded into.
        here: String,
    },
    /// A parameter the guide has is not in the file, or has another size there.
    Parameter {
        /// The file.
        path: PathBuf,
        /// The parameter's name in the guide's store.
        name: String,
        /// Its size in the file; `None` if the file lacks it.
        saved: Option<usize>,
        /// Its size in the guide.
        here: usize,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            SaveError::Format { path, message } => {
                write!(f, "{}: not a saved ravi guide ({message})", path.display())
            }
            SaveError::Mismatch {
                path,
                what,
                saved,
                here,
            } => write!(
                f,
                "{} holds a guide of {what} `{saved}`, not `{here}`",
                path.display()
            ),
            SaveError::Parameter {
                path,
                name,
                saved: None,
                here,
            } => write!(
                f,
                "{} has no parameter `{name}` (this guide's has {here} values)",
                path.display()
            ),
            SaveError::Parameter {
                path,
                name,
                saved: Some(s),
                here,
            } => write!(
                f,
                "{}: parameter `{name}` has {s} values there but {here} in this guide",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SaveError {}

/// The guide's type without generic arguments (the device, size parameters).
fn guide_name<G>() -> String {
    let full = std::any::type_name::<G>();
    full.split('<').next().unwrap_or(full).to_string()
}

/// FNV-1a over the compiled model's inputs and latent sites and the guide's parameters.
fn signature<G: Guide<D>, D: Backend>(guide: &G) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |text: &str| {
        for b in text.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(G::Model::NAME);
    for i in G::Model::inputs() {
        eat(&format!("{} {:?} {:?}", i.name, i.dims, i.integers));
    }
    for l in G::Model::latents() {
        eat(&format!(
            "{} {:?} {:?} {}",
            l.name, l.shape, l.support, l.local
        ));
    }
    eat(&guide_name::<G>());
    let store = guide.params();
    for (id, (name, t)) in store.ids().zip(store.iter()) {
        if !store.is_constant(id) {
            eat(&format!("{name} {}", t.as_vec().len()));
        }
    }
    format!("{h:016x}")
}

/// Writes `guide`'s parameters and metadata to `path` (see the module docs).
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
/// let path = std::env::temp_dir().join("ravi-doc-line.safetensors");
/// guide.save(&path)?; // the method `guide!` generates calls this function
/// let loaded = LineGuide::load(&path, &Cpu::default())?; // a fit of it continues from here
///
/// // the file holds a guide of `Line` named `LineGuide`: another guide refuses it
/// guide! { guide LineMeanField for Line { a ~ MeanField; b ~ MeanField; } }
/// let other = LineMeanField::load(&path, &Cpu::default());
/// assert!(matches!(other, Err(ravi::SaveError::Mismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save<G: Guide<D>, D: Backend>(guide: &G, path: impl AsRef<Path>) -> Result<(), SaveError> {
    write(guide, path.as_ref(), Vec::new(), Vec::new())
}

/// [`save`] of the trainer's guide as it stands, with Adam's step count and both moments of
/// every parameter (tensors `adam.m/{name}`, `adam.v/{name}`) and the steps taken, so that
/// [`resume_fit`] continues the fit where it stopped. The file also loads as a plain guide.
///
/// ```no_run
/// # use ravi::prelude::*;
/// # model! { model Line(x: [N], y: [N]) { a ~ Normal(0.0, 10.0); y ~ Normal(a * x, 0.5); } }
/// # guide! { guide LineGuide for Line { a ~ MeanField; } }
/// # let data = LineData { x: Array::vector(vec![1.0, 2.0]), y: Array::vector(vec![1.1, 1.9]) };
/// let opts = FitOptions { steps: 2000, progress: false, ..FitOptions::default() };
/// let mut guide = LineGuide::new(&Cpu::seeded(0));
/// let mut trainer = ravi::Trainer::new(&mut guide, &data, &opts)?;
/// for _ in 0..500 {
///     trainer.step()?;
/// }
/// ravi::save::save_fit(&mut trainer, "line.fit.safetensors")?;
/// // later, in another process:
/// let mut guide = LineGuide::load("line.fit.safetensors", &Cpu::seeded(1))?;
/// let mut trainer = ravi::Trainer::new(&mut guide, &data, &opts)?;
/// ravi::save::resume_fit(&mut trainer, "line.fit.safetensors")?; // at step 500 of 2000
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save_fit<G: Guide<D>, D: Backend>(
    trainer: &mut Trainer<'_, G, D>,
    path: impl AsRef<Path>,
) -> Result<(), SaveError> {
    let state = trainer.optimizer_state();
    let steps = trainer.steps_taken();
    let guide = trainer.guide();
    let names: Vec<String> = guide.params().iter().map(|(n, _)| n.to_string()).collect();
    let mut tensors = Vec::with_capacity(2 * names.len());
    for ((name, m), v) in names.iter().zip(state.m).zip(state.v) {
        tensors.push((format!("adam.m/{name}"), m));
        tensors.push((format!("adam.v/{name}"), v));
    }
    let meta = vec![
        ("adam_t".to_string(), state.t.to_string()),
        ("fit_steps".to_string(), steps.to_string()),
    ];
    write(guide, path.as_ref(), tensors, meta)
}

/// Continues in `trainer` (whose guide was loaded from the same file, `G::load`) the fit
/// [`save_fit`] saved at `path`: Adam's moments and step count, and the steps taken (the
/// learning-rate schedule goes on from there). A file without them, or whose moments do
/// not fit the guide's parameters, is an error that says so.
pub fn resume_fit<G: Guide<D>, D: Backend>(
    trainer: &mut Trainer<'_, G, D>,
    path: impl AsRef<Path>,
) -> Result<(), SaveError> {
    let path = path.as_ref();
    let (bytes, meta) = read(path)?;
    let format = |m: String| format_error(path, m);
    let number = |key: &str| -> Result<i64, SaveError> {
        meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| {
            format(format!(
                "no `{key}`: the file holds a guide saved without its fit (`save`, not `save_fit`)"
            ))
        })
    };
    let (t, steps) = (number("adam_t")?, number("fit_steps")?);
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let names: Vec<String> = trainer
        .guide()
        .params()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let mut state = OptimizerState {
        t: t as i32,
        m: Vec::with_capacity(names.len()),
        v: Vec::with_capacity(names.len()),
    };
    for name in &names {
        for (prefix, out) in [("adam.m/", &mut state.m), ("adam.v/", &mut state.v)] {
            let key = format!("{prefix}{name}");
            let t = tensors
                .tensor(&key)
                .map_err(|_| format(format!("no optimiser moments `{key}`")))?;
            out.push(f32s(t.data()));
        }
    }
    trainer
        .resume(steps.max(0) as usize, &state)
        .map_err(|e| format(e.to_string()))
}

/// The bytes of the file at `path` and its metadata.
fn read(path: &Path) -> Result<(Vec<u8>, HashMap<String, String>), SaveError> {
    let bytes = std::fs::read(path).map_err(|e| SaveError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| format_error(path, e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    Ok((bytes, meta))
}

fn format_error(path: &Path, message: String) -> SaveError {
    SaveError::Format {
        path: path.to_path_buf(),
        message,
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Writes `guide`'s parameters and metadata, and `extra` tensors and metadata, to `path`.
fn write<G: Guide<D>, D: Backend>(
    guide: &G,
    path: &Path,
    extra: Vec<(String, Vec<f32>)>,
    extra_meta: Vec<(String, String)>,
) -> Result<(), SaveError> {
    let store = guide.params();
    let values: Vec<(String, Vec<u8>, usize, bool)> = store
        .ids()
        .zip(store.iter())
        .map(|(id, (name, t))| (name.to_string(), t.as_vec(), store.is_constant(id)))
        .chain(extra.into_iter().map(|(n, v)| (n, v, false)))
        .map(|(name, v, constant)| {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, bytes, v.len(), constant)
        })
        .collect();
    let constants: Vec<&str> = values
        .iter()
        .filter(|v| v.3)
        .map(|v| v.0.as_str())
        .collect();
    let metadata: HashMap<String, String> = [
        ("format", "ravi-guide"),
        ("ravi_version", env!("CARGO_PKG_VERSION")),
        ("model", G::Model::NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([
        ("guide".to_string(), guide_name::<G>()),
        ("signature".to_string(), signature(guide)),
        ("constants".to_string(), constants.join("\n")),
    ])
    .chain(extra_meta)
    .collect();
    let format = |e: safetensors::SafeTensorError| SaveError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let views: Vec<(String, TensorView<'_>)> = values
        .iter()
        .map(|(name, bytes, n, _)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, vec![*n], bytes).map_err(format)?,
            ))
        })
        .collect::<Result<_, SaveError>>()?;
    safetensors::serialize_to_file(views, &Some(metadata), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => SaveError::Io {
            path: path.to_path_buf(),
            message: io.to_string(),
        },
        other => format(other),
    })
}

/// Reads the parameters saved at `path` into `guide` (a fresh one of the same guide and
/// model: `G::new(&dev)`), checking the model, the guide and every parameter first; the
/// guide is then marked as started, so a fit continues from it.
pub fn load_into<G: Guide<D>, D: Backend>(
    mut guide: G,
    path: impl AsRef<Path>,
) -> Result<G, SaveError> {
    let path = path.as_ref();
    let (bytes, meta) = read(path)?;
    let format = |m: String| format_error(path, m);
    let signature_here = signature(&guide);
    if meta.get("format").map(String::as_str) != Some("ravi-guide") {
        return Err(format("no ravi metadata".into()));
    }
    let mismatch = |what: &'static str, key: &str, here: String| {
        let saved = meta.get(key).cloned().unwrap_or_default();
        (saved != here).then(|| SaveError::Mismatch {
            path: path.to_path_buf(),
            what,
            saved,
            here,
        })
    };
    if let Some(e) = mismatch("the model", "model", G::Model::NAME.to_string()) {
        return Err(e);
    }
    if let Some(e) = mismatch("the guide", "guide", guide_name::<G>()) {
        return Err(e);
    }
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let saved_signature = meta.get("signature").map(String::as_str);
    let read = |name: &str| -> Option<Vec<f32>> {
        let t = tensors.tensor(name).ok()?;
        (t.dtype() == Dtype::F32).then(|| f32s(t.data()))
    };
    let store = guide.params_mut();
    let ids: Vec<_> = store.ids().collect();
    for id in ids {
        if store.is_constant(id) {
            continue;
        }
        let name = store.name(id).to_string();
        let here = store.get(id).as_vec().len();
        match read(&name) {
            Some(v) if v.len() == here => store.set(id, &v),
            saved => {
                return Err(SaveError::Parameter {
                    path: path.to_path_buf(),
                    name,
                    saved: saved.map(|v| v.len()),
                    here,
                })
            }
        }
    }
    for name in meta
        .get("constants")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
    {
        let v = read(name)
            .ok_or_else(|| format(format!("constant `{name}` is listed but not stored")))?;
        store.set_constant(name, v);
    }
    store.mark_started();
    if saved_signature != Some(signature_here.as_str()) {
        return Err(format(
            "the model's inputs or latent sites differ from the ones it was saved with (same names, other shapes or supports)".into(),
        ));
    }
    Ok(guide)
}
