//! Installs greenloop-patch before the test harness starts (from
//! `.init_array`), for test binaries that run another crate's suites.

/// Installs the patch; run by the loader before `main`.
extern "C" fn install_patch() {
    greenloop_patch::install();
}

#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL: extern "C" fn() = install_patch;

#[test]
fn the_included_suites_run_patched() {
    assert!(greenloop_patch::is_installed());
    assert!(greenloop_patch::is_linked());
}
