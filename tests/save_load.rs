//! A fitted guide saved and loaded: bit for bit across two processes, with its start's
//! constants; a file of another model or guide, a damaged file, a missing one are typed
//! errors that say what differs.

use ravi::prelude::*;
use ravi::SaveError;

model! {
    model Line(x: [N], y: [N]) {
        a ~ Normal(0.0, 1.0);
        b ~ Normal(0.0, 1.0);
        s ~ LogNormal(0.0, 1.0);
        y ~ Normal(a + b * x, s);
    }
    model Other(y: [N]) {
        a ~ Normal(0.0, 1.0);
        y ~ Normal(a, 1.0);
    }
}
guide! {
    guide LineGuide for Line { (a, b) ~ FullRank; s ~ MeanField; }
    guide LineMeanField for Line { (a, b) ~ MeanField; s ~ MeanField; }
    guide OtherGuide for Other { a ~ MeanField; }
}

fn data() -> LineData {
    LineData {
        x: Array::vector(vec![-1.0, 0.0, 1.0, 2.0, 3.0]),
        y: Array::vector(vec![-0.8, 0.3, 1.1, 2.2, 2.9]),
    }
}

/// Every parameter's bits, in the store's order, as one string.
fn bits<G: Guide<Cpu>>(g: &G) -> String {
    g.params()
        .iter()
        .map(|(name, t)| {
            let v: Vec<String> = t
                .as_vec()
                .iter()
                .map(|x| format!("{:08x}", x.to_bits()))
                .collect();
            format!("{name}={}", v.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn fitted() -> LineGuide {
    let mut g = LineGuide::new(&Cpu::seeded(3));
    let opts = FitOptions {
        steps: 300,
        progress: false,
        ..FitOptions::default()
    };
    ravi::fit(&mut g, &data(), &opts).unwrap();
    g
}

/// The child process of `a_saved_guide_loads_bit_for_bit_in_another_process`.
#[test]
fn child_loads_a_saved_guide() {
    if let Ok(path) = std::env::var("RAVI_SAVED_GUIDE") {
        let g = LineGuide::load(&path, &Cpu::default()).unwrap();
        println!("BITS {}", bits(&g));
    }
}

#[test]
fn a_saved_guide_loads_bit_for_bit_in_another_process() {
    let g = fitted();
    assert!(
        g.params()
            .iter()
            .any(|(n, _)| n.ends_with(".frame") || n.ends_with(".unit")),
        "the start added constants"
    );
    let path = std::env::temp_dir().join(format!("ravi-save-{}.safetensors", std::process::id()));
    g.save(&path).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_loads_a_saved_guide",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("RAVI_SAVED_GUIDE", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let child = stdout
        .lines()
        .find_map(|l| l.split_once("BITS ").map(|(_, b)| b))
        .unwrap_or_else(|| panic!("the child printed no parameters: {stdout}"));
    assert_eq!(child, bits(&g));
    // in this process too
    assert_eq!(
        bits(&LineGuide::load(&path, &Cpu::seeded(9)).unwrap()),
        bits(&g)
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_file_of_another_model_or_guide_is_named() {
    let path = std::env::temp_dir().join(format!(
        "ravi-save-other-{}.safetensors",
        std::process::id()
    ));
    fitted().save(&path).unwrap();
    match OtherGuide::load(&path, &Cpu::default()) {
        Err(SaveError::Mismatch {
            what: "the model",
            saved,
            here,
            ..
        }) => {
            assert_eq!((saved.as_str(), here.as_str()), ("Line", "Other"))
        }
        other => panic!("{:?}", other.err()),
    }
    match LineMeanField::load(&path, &Cpu::default()) {
        Err(SaveError::Mismatch {
            what: "the guide", ..
        }) => {}
        other => panic!("{:?}", other.err()),
    }
    std::fs::write(&path, b"not a guide").unwrap();
    assert!(matches!(
        LineGuide::load(&path, &Cpu::default()),
        Err(SaveError::Format { .. })
    ));
    let _ = std::fs::remove_file(&path);
    assert!(matches!(
        LineGuide::load(&path, &Cpu::default()),
        Err(SaveError::Io { .. })
    ));
}

/// A fit saved mid-way with its optimiser (`save_fit`) resumes with Adam's moments and step
/// count bit for bit and the steps taken, on the engine and on the graph, and then runs
/// the rest of its steps; a plain guide file has no fit to resume, and says so.
#[test]
fn a_fit_resumes_with_its_optimiser() {
    let data = data();
    for fused in [true, false] {
        let opts = FitOptions {
            steps: 200,
            progress: false,
            warnings: false,
            fused,
            ..FitOptions::default()
        };
        let path = std::env::temp_dir().join(format!("ravi-resume-{fused}.safetensors"));
        let mut g = LineGuide::new(&Cpu::seeded(5));
        let mut trainer = ravi::Trainer::new(&mut g, &data, &opts).unwrap();
        for _ in 0..120 {
            trainer.step().unwrap();
        }
        let saved = trainer.optimizer_state();
        assert_eq!(saved.t, 120);
        ravi::save::save_fit(&mut trainer, &path).unwrap();
        drop(trainer);

        let mut resumed = LineGuide::load(&path, &Cpu::seeded(6)).unwrap();
        assert_eq!(bits(&resumed), bits(&g), "fused {fused}");
        let mut trainer = ravi::Trainer::new(&mut resumed, &data, &opts).unwrap();
        ravi::save::resume_fit(&mut trainer, &path).unwrap();
        let state = trainer.optimizer_state();
        let same = |a: &[Vec<f32>], b: &[Vec<f32>]| {
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        };
        assert!(state.t == saved.t && same(&state.m, &saved.m) && same(&state.v, &saved.v));
        assert_eq!(trainer.steps_taken(), 120);
        let mut more = 0;
        while !trainer.is_done() {
            trainer.step().unwrap();
            more += 1;
        }
        assert_eq!(more, 80, "the rest of the 200 steps");
        assert!(trainer.optimizer_state().t == 200);

        let plain = std::env::temp_dir().join(format!("ravi-plain-{fused}.safetensors"));
        fitted().save(&plain).unwrap();
        let mut g = LineGuide::load(&plain, &Cpu::seeded(6)).unwrap();
        let mut trainer = ravi::Trainer::new(&mut g, &data, &opts).unwrap();
        match ravi::save::resume_fit(&mut trainer, &plain) {
            Err(SaveError::Format { message, .. }) => {
                assert!(message.contains("save_fit"), "{message}")
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }
}
