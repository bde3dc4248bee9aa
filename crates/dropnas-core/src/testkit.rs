//! Test support (feature `testkit`): load the PyTorch reference fixtures of `tools/fixtures`
//! into modules by parameter path, and compare tensors with a tolerance.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use std::collections::HashMap;
use std::path::PathBuf;

/// The folder `dropnas selftest --fixtures DIR` points at (set once, before the checks run).
static FIXTURES_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Reads the fixtures from `dir` from now on (the first call wins).
pub fn use_fixtures_dir(dir: PathBuf) {
    let _ = FIXTURES_DIR.set(dir);
}

/// The reference fixtures: the folder given to [`use_fixtures_dir`], else `$DROPNAS_FIXTURES`,
/// else `tools/fixtures` under the current folder (a checkout's root), else this workspace's
/// `tools/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = FIXTURES_DIR.get() {
        return dir.clone();
    }
    if let Ok(dir) = std::env::var("DROPNAS_FIXTURES") {
        return dir.into();
    }
    let local = PathBuf::from("tools/fixtures");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures")
}

/// Whether this is a CI run: `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "false" | "0"))
}

/// For a test that needs a CPU feature: `true` when `present`; otherwise prints `SKIPPED` with
/// the reason and returns `false`, or fails under CI (a CI machine must run every kernel test).
pub fn cpu_feature_or_skip(test: &str, feature: &str, present: bool) -> bool {
    if !present {
        assert!(!in_ci(), "{test}: this CPU lacks {feature}, and CI must run this test");
        eprintln!("SKIPPED {test}: this CPU lacks {feature}");
    }
    present
}

/// A fixture's name (or a key) under PyTorch setting `compat`: the default setting's (1.0) is
/// `base` itself, the other's `base.modern` (`tools/reference/make_fixtures.py` writes both).
pub fn for_compat(base: &str, compat: crate::TorchCompat) -> String {
    match compat {
        crate::TorchCompat::V1_0 => base.to_string(),
        crate::TorchCompat::Modern => format!("{base}.modern"),
    }
}

/// The tensors of one or more fixture files (continuation files merged), and the `config`
/// metadata of the first.
pub struct Fixture {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub config: serde_json::Value,
    /// The files read, in order (the first names the fixture in [`UNUSED_KEYS`]).
    files: Vec<String>,
    /// The keys read so far, for [`Fixture::assert_every_key_used`].
    used: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

/// Every fixture file and the test that reads it whole (calls [`Fixture::assert_every_key_used`]):
/// a file added to `tools/fixtures` without an owner here fails `every_fixture_file_has_an_owner`.
pub const FIXTURE_OWNERS: &[(&str, &str)] = &[
    ("ops.safetensors", "dropnas-core reference::every_op_matches_pytorch_forward_and_backward"),
    ("search_network.safetensors", "dropnas-core reference::search_network_matches_pytorch_under_masks"),
    ("search_network.grad.safetensors", "dropnas-core reference::search_network_matches_pytorch_under_masks"),
    ("augment_network.safetensors", "dropnas-core reference::augment_network_matches_pytorch_train_and_eval"),
    ("augment_network.grad.safetensors", "dropnas-core reference::augment_network_matches_pytorch_train_and_eval"),
    ("augment_network_imagenet.safetensors", "dropnas-train reference::imagenet_loss_and_gradients_match_pytorch"),
    ("adam.safetensors", "dropnas-search alpha_adam::tests::both_settings_match_the_reference"),
    ("search_step.safetensors", "dropnas-search reference::two_dropnas_steps_match_pytorch_phase_by_phase"),
    ("search_step.1.safetensors", "dropnas-search reference::two_dropnas_steps_match_pytorch_phase_by_phase"),
    ("search_step.modern.safetensors", "dropnas-search reference::two_dropnas_steps_match_pytorch_phase_by_phase"),
    ("search_step.1.modern.safetensors", "dropnas-search reference::two_dropnas_steps_match_pytorch_phase_by_phase"),
    ("search_step_1-skip.safetensors", "dropnas-search reference::steps_in_the_skip_spaces_match_pytorch"),
    ("search_step_1-skip.1.safetensors", "dropnas-search reference::steps_in_the_skip_spaces_match_pytorch"),
    ("search_step_3-skip.safetensors", "dropnas-search reference::steps_in_the_skip_spaces_match_pytorch"),
    ("search_step_3-skip.1.safetensors", "dropnas-search reference::steps_in_the_skip_spaces_match_pytorch"),
    ("augment_step.safetensors", "dropnas-train reference::two_augment_steps_match_pytorch"),
    ("augment_step.1.safetensors", "dropnas-train reference::two_augment_steps_match_pytorch"),
    ("augment_step.modern.safetensors", "dropnas-train reference::two_augment_steps_match_pytorch"),
    ("augment_step.1.modern.safetensors", "dropnas-train reference::two_augment_steps_match_pytorch"),
    ("param_counts.json", "dropnas-core reference::parameter_counts_equal_pytorch"),
];

/// The one list of fixture keys that no test compares, with the reason: `(fixture, key pattern,
/// reason)`, where the fixture is the first file's name without `.safetensors` and a pattern
/// ending in `*` matches every key with that prefix. Any other key a test loads and does not read
/// fails [`Fixture::assert_every_key_used`].
pub const UNUSED_KEYS: &[(&str, &str, &str)] = &[];

impl Fixture {
    /// Loads `tools/fixtures/<name>.safetensors` and the continuation files it lists.
    pub fn load(name: &str) -> Self {
        let mut fx = Self {
            tensors: HashMap::new(),
            config: serde_json::Value::Null,
            files: Vec::new(),
            used: Default::default(),
        };
        fx.add_file(&format!("{name}.safetensors"));
        let extra: Vec<String> = fx.config["files"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        for f in extra.iter().skip(1) {
            fx.add_file(f);
        }
        fx
    }

    /// Merges another fixture file's tensors (its config is ignored).
    pub fn add_file(&mut self, file: &str) {
        self.files.push(file.to_string());
        let path = fixtures_dir().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors header");
        if let (true, Some(c)) = (self.config.is_null(), meta.metadata().as_ref().and_then(|m| m.get("config"))) {
            self.config = serde_json::from_str(c).expect("config JSON");
        }
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        for (name, view) in st.tensors() {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}: fixtures are float32");
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            self.tensors.insert(name, (view.shape().to_vec(), data));
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The values of `key` (marked as used).
    pub fn data(&self, key: &str) -> &[f32] {
        self.get(key).unwrap_or_else(|| panic!("fixture key `{key}` missing"))
    }

    /// The values of `key` if present (marked as used).
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        let (_, data) = self.tensors.get(key)?;
        self.used.borrow_mut().insert(key.to_string());
        Some(data)
    }

    /// The keys starting with `prefix`, sorted.
    pub fn keys_with(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.tensors.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        keys.sort();
        keys
    }

    /// Fails unless every key of the fixture was read, or is listed in [`UNUSED_KEYS`]: a key
    /// the generator writes and no test compares is a check that silently went missing.
    pub fn assert_every_key_used(&self) {
        let name = self.files.first().map(|f| f.trim_end_matches(".safetensors")).unwrap_or_default();
        let used = self.used.borrow();
        let listed = |key: &str| {
            UNUSED_KEYS.iter().any(|(fx, pattern, _)| {
                *fx == name
                    && match pattern.strip_suffix('*') {
                        Some(prefix) => key.starts_with(prefix),
                        None => key == *pattern,
                    }
            })
        };
        let mut unread: Vec<&String> = self.tensors.keys().filter(|k| !used.contains(*k) && !listed(k)).collect();
        unread.sort();
        assert!(
            unread.is_empty(),
            "fixture {name}: {} keys neither compared nor listed in testkit::UNUSED_KEYS: {:?}",
            unread.len(),
            &unread[..unread.len().min(20)]
        );
    }

    pub fn tensor<B: Backend, const D: usize>(&self, key: &str, device: &B::Device) -> Tensor<B, D> {
        let (shape, data) = self.tensors.get(key).unwrap_or_else(|| panic!("fixture key `{key}` missing"));
        self.used.borrow_mut().insert(key.to_string());
        assert_eq!(shape.len(), D, "{key}: rank");
        Tensor::from_data(TensorData::new(data.clone(), shape.clone()), device)
    }

    /// Sets every float tensor of `module` (parameters and BN running stats) whose
    /// `prefix + path` is in the fixture. PyTorch's Linear weights (`[out, in]`) are transposed
    /// into Burn's `[in, out]`. Returns the module and the paths that were not found.
    pub fn load_into<B: Backend, M: Module<B>>(&self, module: M, prefix: &str) -> (M, Vec<String>) {
        struct Loader<'a> {
            fx: &'a Fixture,
            prefix: &'a str,
            stack: Vec<(String, bool)>,
            missing: Vec<String>,
        }
        impl<B: Backend> ModuleMapper<B> for Loader<'_> {
            fn enter_module(&mut self, name: &str, container_type: &str) {
                self.stack.push((name.to_string(), container_type.starts_with("Enum:")));
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.stack.pop();
            }
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let path: Vec<&str> = self.stack.iter().filter(|(_, e)| !e).map(|(n, _)| n.as_str()).collect();
                let key = format!("{}{}", self.prefix, path.join("."));
                let (id, tensor, mapper) = param.consume();
                let Some((shape, data)) = self.fx.tensors.get(&key) else {
                    self.missing.push(key);
                    return Param::from_mapped_value(id, tensor, mapper);
                };
                self.fx.used.borrow_mut().insert(key.clone());
                let device = tensor.device();
                let require_grad = tensor.is_require_grad();
                let mut value: Tensor<B, D> = Tensor::from_data(TensorData::new(data.clone(), shape.clone()), &device);
                if key.ends_with("linear.weight") && D == 2 {
                    value = value.transpose();
                }
                assert_eq!(value.dims(), tensor.dims(), "{key}: shape");
                if require_grad {
                    value = value.require_grad();
                }
                Param::from_mapped_value(id, value, mapper)
            }
        }
        let mut l = Loader { fx: self, prefix, stack: Vec::new(), missing: Vec::new() };
        let module = module.map(&mut l);
        (module, l.missing)
    }
}

/// Gradients of every parameter of `module`, by path (Linear weights transposed to PyTorch's layout).
pub fn grads_by_path<B: AutodiffBackend, M: Module<B>>(module: &M, grads: &B::Gradients) -> HashMap<String, Vec<f32>> {
    struct V<'a, B: AutodiffBackend> {
        grads: &'a B::Gradients,
        stack: Vec<(String, bool)>,
        out: HashMap<String, Vec<f32>>,
    }
    impl<B: AutodiffBackend> burn::module::ModuleVisitor<B> for V<'_, B> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack.push((name.to_string(), container_type.starts_with("Enum:")));
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let path: Vec<&str> = self.stack.iter().filter(|(_, e)| !e).map(|(n, _)| n.as_str()).collect();
            let path = path.join(".");
            if let Some(mut g) = param.val().grad(self.grads) {
                if path.ends_with("linear.weight") && D == 2 {
                    g = g.transpose();
                }
                self.out.insert(path, g.into_data().convert::<f32>().into_vec::<f32>().expect("f32"));
            }
        }
    }
    let mut v = V::<B> { grads, stack: Vec::new(), out: HashMap::new() };
    module.visit(&mut v);
    v.out
}

/// Values of every float tensor of `module` by path (Linear weights in PyTorch's layout).
pub fn values_by_path<B: Backend, M: Module<B>>(module: &M) -> HashMap<String, Vec<f32>> {
    struct V {
        stack: Vec<(String, bool)>,
        out: HashMap<String, Vec<f32>>,
    }
    impl<B: Backend> burn::module::ModuleVisitor<B> for V {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack.push((name.to_string(), container_type.starts_with("Enum:")));
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let path: Vec<&str> = self.stack.iter().filter(|(_, e)| !e).map(|(n, _)| n.as_str()).collect();
            let path = path.join(".");
            let mut t = param.val();
            if path.ends_with("linear.weight") && D == 2 {
                t = t.transpose();
            }
            self.out.insert(path, t.into_data().convert::<f32>().into_vec::<f32>().expect("f32"));
        }
    }
    // Burn defers running-statistics updates until a sync; saving a record syncs them.
    let synced = module.clone().load_record(module.clone().into_record());
    let mut v = V { stack: Vec::new(), out: HashMap::new() };
    synced.visit(&mut v);
    v.out
}

/// Asserts `|a - e| <= atol + rtol * |e|` elementwise, naming the worst element on failure,
/// where `atol` is at least `rtol` times the tensor's largest magnitude: an element that is a
/// sum with cancellation (a gradient, say) is compared at the scale of its tensor, as float32
/// accumulation order differs between implementations.
/// Returns the largest relative error seen (relative to `max(|e|, atol / rtol)`).
pub fn assert_close(name: &str, actual: &[f32], expected: &[f32], rtol: f64, atol: f64) -> f64 {
    assert_eq!(actual.len(), expected.len(), "{name}: length");
    let scale = expected.iter().fold(0.0f64, |m, &e| m.max((e as f64).abs()));
    let atol = atol.max(rtol * scale);
    let mut worst = (0.0f64, 0usize);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let (a, e) = (a as f64, e as f64);
        let err = (a - e).abs();
        let scaled = err / (atol + rtol * e.abs());
        if scaled > 1.0 || scaled.is_nan() {
            panic!("{name}[{i}]: {a} vs expected {e} (|diff| {err:.3e} > {atol:.1e} + {rtol:.1e}*|e|)");
        }
        let rel = err / e.abs().max(atol / rtol);
        if rel > worst.0 {
            worst = (rel, i);
        }
    }
    worst.0
}

/// The tolerance on a step's change, in units of the value tolerance: the change is a difference
/// of two float32 states, each within `rtol` of the reference, but its own error is that of one
/// step's arithmetic, far under the states' magnitude.
pub const MOVE_RTOL_PER_RTOL: f64 = 100.0;

/// Compares the tensors a step fixture stores under `prefix` (`step.<s>.param.`) with ours
/// (`values`, by path): each whole within `rtol`, and its change since `before` against the
/// reference's change since `ref_before` ([`assert_moved`]); then makes the reference's values
/// the next step's `ref_before`. Returns the keys stored and the largest change error relative
/// to its tolerance.
pub fn assert_step_state(
    fx: &Fixture,
    prefix: &str,
    values: &HashMap<String, Vec<f32>>,
    before: &HashMap<String, Vec<f32>>,
    ref_before: &mut HashMap<String, Vec<f32>>,
    rtol: f64,
) -> (Vec<String>, f64) {
    let keys = fx.keys_with(prefix);
    let mut worst_move = 0.0f64;
    for key in &keys {
        let path = &key[prefix.len()..];
        let theirs = fx.data(key);
        assert_close(key, &values[path], theirs, rtol, 1e-7);
        let moved =
            assert_moved(key, (&before[path], &values[path]), (&ref_before[path], theirs), MOVE_RTOL_PER_RTOL * rtol);
        worst_move = worst_move.max(moved);
        ref_before.insert(path.to_string(), theirs.to_vec());
    }
    (keys, worst_move)
}

/// Asserts that a step moved a tensor as the reference's step did: our change `after - before`
/// against the reference's `ref_after - ref_before`, elementwise within `rtol` times the
/// reference change's largest magnitude, plus the float32 rounding of the four values (a few
/// ulps of the larger value) and an absolute floor of 1e-7. The whole-tensor check of [`assert_close`] cannot see a change
/// smaller than its tolerance (a BatchNorm weight moved by 4e-6 against 5e-6): this one fails
/// when a step forgets to update such a tensor.
/// Returns the largest error relative to the tolerance (at most 1).
pub fn assert_moved(
    name: &str,
    (before, after): (&[f32], &[f32]),
    (ref_before, ref_after): (&[f32], &[f32]),
    rtol: f64,
) -> f64 {
    assert_eq!(before.len(), ref_after.len(), "{name}: length");
    assert_eq!(after.len(), ref_after.len(), "{name}: length");
    assert_eq!(ref_before.len(), ref_after.len(), "{name}: length");
    let change = |b: f32, a: f32| a as f64 - b as f64;
    let scale = ref_before.iter().zip(ref_after).fold(0.0f64, |m, (&b, &a)| m.max(change(b, a).abs()));
    let mut worst = 0.0f64;
    for i in 0..after.len() {
        let (ours, theirs) = (change(before[i], after[i]), change(ref_before[i], ref_after[i]));
        let magnitude =
            [before[i], after[i], ref_before[i], ref_after[i]].iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
        let tol = rtol * scale + ROUNDING_ULPS * f32::EPSILON as f64 * magnitude + MOVE_ATOL;
        let err = (ours - theirs).abs();
        if err > tol || err.is_nan() {
            panic!(
                "{name}[{i}]: moved by {ours:.4e}, the reference by {theirs:.4e} (|diff| {err:.3e} > {tol:.1e}; \
                 the reference's largest change {scale:.3e})"
            );
        }
        worst = worst.max(err / tol.max(f64::MIN_POSITIVE));
    }
    worst
}

/// The float32 rounding allowed per element in [`assert_moved`], in ulps of the largest value:
/// each of the four values is rounded by half an ulp.
const ROUNDING_ULPS: f64 = 4.0;

/// The absolute floor of [`assert_moved`]: running means of near-zero activations (a dropped
/// path's BatchNorm, say) move by float32 noise of up to 1e-8, in either implementation (the whole-tensor check's floor).
const MOVE_ATOL: f64 = 1e-7;

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of issue 16: a BatchNorm weight of about 1 moved by 3.8e-6, under the
    /// whole-tensor tolerance; a step that forgot it is caught, one that did it is not.
    #[test]
    fn a_change_under_the_value_tolerance_is_still_compared() {
        let before = [1.02f32, 0.97, 1.1];
        let moved: Vec<f32> = before.iter().map(|v| v - 3.8e-6).collect();
        assert_close("whole tensor", &before, &moved, 1e-5, 1e-7);
        assert!(assert_moved("moved", (&before, &moved), (&before, &moved), 1e-3) <= 1.0);
        let forgot = std::panic::catch_unwind(|| assert_moved("forgot", (&before, &before), (&before, &moved), 1e-3));
        assert!(forgot.is_err(), "an unmoved tensor passed");
    }

    #[test]
    fn every_fixture_file_has_an_owner() {
        let mut files: Vec<String> = std::fs::read_dir(fixtures_dir())
            .expect("tools/fixtures")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        for f in &files {
            assert!(FIXTURE_OWNERS.iter().any(|(o, _)| o == f), "fixture {f} has no owning test in FIXTURE_OWNERS");
        }
        for (o, _) in FIXTURE_OWNERS {
            assert!(files.iter().any(|f| f == o), "FIXTURE_OWNERS names {o}, which tools/fixtures lacks");
        }
    }
}
