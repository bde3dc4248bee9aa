//! Image folders: the layout and order of torchvision's `ImageFolder`, skipped and ignored
//! files, the error cases, and the loader's guarantees (same batches on any number of threads,
//! resumable at any batch) on lazily decoded images.

mod common;

use dropnas_data::image_folder::{IMAGE_EXTENSIONS, ImageFolder};
use dropnas_data::{DataError, DataSource, FolderAugment, FolderTransforms, LoadOptions, Loader, LoaderConfig, Split};
use std::path::Path;
use std::sync::Arc;

/// A `w x h` image of class `class`: a class colour, stripes and a little noise.
fn picture(class: usize, w: u32, h: u32, seed: u64) -> image::RgbImage {
    let noise = common::bytes((w * h) as usize, seed);
    image::RgbImage::from_fn(w, h, |x, y| {
        let n = noise[(y * w + x) as usize] / 8;
        let stripe = if ((x + y * class as u32) / 3).is_multiple_of(2) { 60 } else { 0 };
        let mut p = [n, n, n];
        p[class % 3] = p[class % 3].saturating_add(150 + stripe);
        image::Rgb(p)
    })
}

/// Writes `path` as PNG or JPEG (by extension).
fn save(path: &Path, img: &image::RgbImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `root/{train,val}/{ant,bee,cat}`: per class, a PNG, a JPEG, an upper-case `.JPEG` in a
/// sub-folder (train); val gets two images per class.
fn write_folder(root: &Path) {
    for (c, class) in ["bee", "ant", "cat"].iter().enumerate() {
        let dir = root.join("train").join(class);
        save(&dir.join("b.png"), &picture(c, 23, 17, c as u64));
        save(&dir.join("a.jpg"), &picture(c, 30, 40, 10 + c as u64));
        save(&dir.join("deep").join("0.JPEG"), &picture(c, 16, 16, 20 + c as u64));
        save(&dir.join("c.png"), &picture(c, 12, 31, 30 + c as u64));
        let val = root.join("val").join(class);
        save(&val.join("x.png"), &picture(c, 20, 20, 40 + c as u64));
        save(&val.join("y.jpg"), &picture(c, 33, 25, 50 + c as u64));
    }
}

fn names(folder: &ImageFolder, root: &Path) -> Vec<String> {
    (0..folder.len()).map(|i| folder.path(i).strip_prefix(root).unwrap().display().to_string()).collect()
}

#[test]
fn classes_sorted_files_in_image_folder_order() {
    let tmp = common::temp_dir();
    write_folder(tmp.path());
    let f = ImageFolder::open(tmp.path(), Split::Train, None, 2).unwrap();
    assert_eq!(f.classes(), ["ant", "bee", "cat"]);
    // os.walk order: a folder's files (sorted), then its sub-folders.
    assert_eq!(
        names(&f, tmp.path())[..4],
        ["train/ant/a.jpg", "train/ant/b.png", "train/ant/c.png", "train/ant/deep/0.JPEG"]
    );
    assert_eq!(f.len(), 12);
    assert_eq!((0..12).map(|i| f.label(i)).collect::<Vec<_>>(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert!(f.skipped().is_empty() && f.ignored().is_empty());
    let img = f.decode(0).unwrap();
    assert_eq!((img.width, img.height), (30, 40));
    assert_eq!(IMAGE_EXTENSIONS, ["jpg", "jpeg", "png"]);
    let val = ImageFolder::open(tmp.path(), Split::Test, Some(f.classes()), 1).unwrap();
    assert_eq!(val.len(), 6);
}

#[test]
fn empty_undecodable_and_other_files_are_skipped_counted_and_reported() {
    let tmp = common::temp_dir();
    write_folder(tmp.path());
    let ant = tmp.path().join("train/ant");
    std::fs::write(ant.join("empty.jpg"), b"").unwrap();
    std::fs::write(ant.join("garbage.png"), common::bytes(500, 7)).unwrap();
    std::fs::write(ant.join("notes.txt"), b"not an image").unwrap();
    std::fs::write(ant.join(".DS_Store"), b"\0\0").unwrap();
    let f = ImageFolder::open(tmp.path(), Split::Train, None, 3).unwrap();
    assert_eq!(f.len(), 12, "the good images are all kept");
    let skipped: Vec<(String, String)> = f
        .skipped()
        .iter()
        .map(|s| (s.path.file_name().unwrap().to_string_lossy().into_owned(), s.reason.clone()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0], ("empty.jpg".into(), "empty file".into()));
    assert_eq!(skipped[1].0, "garbage.png");
    assert_eq!(f.ignored().len(), 2);
    let notes = f.notes().join("\n");
    assert!(notes.contains("skipped 2 file(s)") && notes.contains("empty.jpg: empty file"), "{notes}");
    assert!(notes.contains("garbage.png: not"), "{notes}");
    assert!(notes.contains("ignored 2 file(s)") && notes.contains("notes.txt"), "{notes}");
}

#[test]
fn layout_errors_name_the_folder_and_the_fix() {
    let tmp = common::temp_dir();
    let root = tmp.path();
    let err = |split| ImageFolder::open(root, split, None, 1).unwrap_err();
    // nothing at all
    let e = err(Split::Train);
    assert!(matches!(e, DataError::FolderLayout { .. }) && e.to_string().contains("no train/ folder"), "{e}");
    assert!(e.to_string().contains("DIR/train/CLASS"), "{e}");
    // train/ without class folders
    std::fs::create_dir_all(root.join("train")).unwrap();
    std::fs::write(root.join("train/loose.jpg"), b"x").unwrap();
    let e = err(Split::Train);
    assert!(e.to_string().contains("has no class folders"), "{e}");
    // a class folder with nothing usable in it
    write_folder(root);
    std::fs::create_dir_all(root.join("train/dog")).unwrap();
    std::fs::write(root.join("train/dog/broken.jpg"), common::bytes(100, 3)).unwrap();
    let e = err(Split::Train);
    assert!(matches!(e, DataError::EmptyClass { skipped: 1, ignored: 0, .. }), "{e:?}");
    assert!(e.to_string().contains("train/dog") && e.to_string().contains("no usable"), "{e}");
    std::fs::remove_dir_all(root.join("train/dog")).unwrap();
    // classes of val/ that differ from train/'s
    let classes: Vec<String> = ["ant", "bee", "cat"].map(String::from).to_vec();
    std::fs::rename(root.join("val/cat"), root.join("val/cow")).unwrap();
    let e = ImageFolder::open(root, Split::Test, Some(&classes), 1).unwrap_err();
    assert!(matches!(e, DataError::ClassMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("missing cat") && e.to_string().contains("not in train/: cow"), "{e}");
    // no val/: test/ is used instead, and neither is an error
    std::fs::rename(root.join("val"), root.join("test")).unwrap();
    std::fs::rename(root.join("test/cow"), root.join("test/cat")).unwrap();
    assert_eq!(ImageFolder::open(root, Split::Test, Some(&classes), 1).unwrap().len(), 6);
    std::fs::remove_dir_all(root.join("test")).unwrap();
    let e = err(Split::Test);
    assert!(e.to_string().contains("no val/ or test/ folder"), "{e}");
}

fn loader(root: &Path, workers: usize, cutout: usize) -> Loader {
    let t = FolderTransforms {
        color_jitter: Some(dropnas_data::ColorJitter::DARTS_IMAGENET),
        ..FolderTransforms::for_input_size(16)
    };
    let folder = Arc::new(ImageFolder::open(root, Split::Train, None, 2).unwrap());
    Loader::image_folder(folder, FolderAugment::train(&t, cutout), LoaderConfig::train(5, 9, workers)).unwrap()
}

#[test]
fn batches_do_not_depend_on_threads_and_resume_at_any_batch() {
    let tmp = common::temp_dir();
    write_folder(tmp.path());
    let collect = |l: &Loader, e, k| l.epoch(e, k).collect::<Result<Vec<_>, _>>().unwrap();
    let reference = collect(&loader(tmp.path(), 0, 4), 2, 0);
    assert_eq!(reference.len(), 3);
    assert_eq!(reference[0].shape, [5, 3, 16, 16]);
    assert_eq!(reference[2].shape, [2, 3, 16, 16]);
    for workers in [1, 3] {
        let l = loader(tmp.path(), workers, 4);
        assert_eq!(collect(&l, 2, 0), reference, "{workers} workers");
        assert_eq!(collect(&l, 2, 1), reference[1..], "resumed at batch 1");
        assert_ne!(collect(&l, 3, 0), reference, "another epoch, other crops");
    }
    let l = loader(tmp.path(), 2, 4);
    assert_eq!(l.n_classes(), 3);
    assert_eq!(l.shape(), [3, 16, 16]);
    let labels: Vec<i64> = reference.iter().flat_map(|b| b.labels.clone()).collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert!(reference.iter().all(|b| b.images.iter().all(|v| v.is_finite())));
}

#[test]
fn an_image_that_stops_decoding_is_an_error_naming_it() {
    let tmp = common::temp_dir();
    write_folder(tmp.path());
    // A PNG whose header is intact but whose data is cut short: it passes the opening check.
    let path = tmp.path().join("train/bee/b.png");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let l = loader(tmp.path(), 2, 0);
    let err = l.epoch(0, 0).find_map(Result::err).expect("a batch fails");
    assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("bee/b.png") && err.to_string().contains("--resume"), "{err}");
}

#[test]
fn the_data_source_opens_both_splits_and_subsamples_evenly() {
    let tmp = common::temp_dir();
    write_folder(tmp.path());
    let t = FolderTransforms::for_input_size(12);
    let source = DataSource::new(dropnas_data::Dataset::ImageFolder, Some(&t)).unwrap();
    let opts = LoadOptions { max_train_samples: Some(6), ..LoadOptions::default() };
    let train = source.train(tmp.path(), &opts, 0, LoaderConfig::train(4, 1, 0)).unwrap();
    assert_eq!(train.loader.len(), 6);
    let folder = train.loader.image_folder_source().unwrap();
    // every second file: both classes' halves, all three classes
    assert_eq!((0..6).map(|i| folder.label(i)).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2]);
    assert!(train.notes[0].contains("6 images in 3 classes (a subset: 6 more not used)"), "{:?}", train.notes);
    let test = source.test(tmp.path(), &opts, LoaderConfig::eval(4, 0), train.classes.as_deref()).unwrap();
    assert_eq!(test.loader.len(), 6);
    let batch = test.loader.batch(0, 0).unwrap().unwrap();
    assert_eq!(batch.shape, [4, 3, 12, 12]);
    assert_eq!(batch.labels, [0, 0, 1, 1]);
    assert_eq!(test.classes, train.classes);
}
