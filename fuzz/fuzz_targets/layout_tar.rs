//! OCI layout tarballs (`oci-archive:`): any file opens as a layout or is refused, never a
//! panic; an opened one lists its images and checks its blobs; the index check `save` makes
//! before replacing an archive reads the same bytes without panicking.
#![no_main]

use std::io::Write as _;

use libfuzzer_sys::fuzz_target;
use signet_registry::{Layout, LayoutKind, OpenMode};

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    let _ = signet_registry::fuzzing::archive_index_digest(file.path());
    let Ok(layout) = Layout::open(LayoutKind::Archive, file.path(), OpenMode::MustExist) else {
        return;
    };
    if let Ok(images) = layout.images() {
        for (_, descriptor) in images {
            let _ = layout.blob_size(&descriptor.digest);
        }
    }
    let _ = layout.verify_all();
});
