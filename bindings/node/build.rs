//! Build script: sets up napi linking.

fn main() {
    napi_build::setup();
}
