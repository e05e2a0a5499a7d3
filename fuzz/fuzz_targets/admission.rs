//! AdmissionReview → images: any body gives images to check, nothing to check, or an error,
//! never a panic. Each image's path is a JSON pointer that leads to that very image in the
//! request's object: the mutating webhook patches there, so a wrong path would pin (or skip)
//! the wrong container.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_server::fuzzing::admission_images;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(images)) = admission_images(data) else {
        return;
    };
    // serde_json skips the strings of fields nobody reads without checking their UTF-8, so the
    // typed reader accepts bodies a `Value` refuses; the images it returns are checked UTF-8,
    // and replacing bad bytes elsewhere leaves the paths to them as they were.
    let text = String::from_utf8_lossy(data);
    let body = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(body) => body,
        // A number beyond f64 in a field the reader skips unread (`Value` converts every
        // number); see signet-server's
        // `a_number_beyond_f64_in_an_unread_field_does_not_hide_the_images`.
        Err(e) if e.to_string().starts_with("number out of range") => return,
        Err(e) => panic!("the typed reader accepted a body that is not JSON: {e}"),
    };
    for image in images {
        assert!(
            !image.image.is_empty(),
            "an empty image is not an image to check"
        );
        let pointer: String = image
            .path
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect();
        let found = body.pointer(&format!("/request/object{pointer}"));
        assert_eq!(
            found.and_then(serde_json::Value::as_str),
            Some(image.image.as_str()),
            "path {pointer} does not lead to the image"
        );
    }
});
