//! Compiles `tests/c/smoke.c` against `include/lunar.h` and links it with the freshly built
//! `liblunar.so`, then runs it against a stand-in daemon: the header, the symbol names and the
//! struct layout agree with the Rust side. Skipped (with a note) only when no C compiler exists.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/deps`: the directory holding this test binary, where cargo (re)builds
/// `liblunar.so` along with the rlib the test links. (The copy one level up is refreshed only
/// by `cargo build`, so it may be stale.)
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps directory").to_path_buf()
}

fn c_compiler() -> Option<&'static str> {
    ["cc", "gcc", "clang"].into_iter().find(|compiler| {
        Command::new(compiler)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// Answer two connections, one line each: a result, then an error.
fn stand_in_daemon(path: &Path) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        let answers = [
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"version\":\"0.1.0\"}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1003,\"message\":\"volume 'v' is in use\"}}\n",
        ];
        for answer in answers {
            let (stream, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(stream.try_clone().expect("clone"))
                .read_line(&mut line)
                .expect("read");
            (&stream).write_all(answer.as_bytes()).expect("write");
        }
    })
}

#[test]
fn c_program_links_and_sees_what_rust_computes() {
    let Some(compiler) = c_compiler() else {
        eprintln!("no C compiler found; skipping the C ABI check");
        return;
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = library_dir();
    assert!(
        lib_dir.join("liblunar.so").exists(),
        "liblunar.so not found in {}",
        lib_dir.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let program = work.path().join("smoke");
    let compiled = Command::new(compiler)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/smoke.c"))
        .arg("-o")
        .arg(&program)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-llunar")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .expect("run the C compiler");
    assert!(
        compiled.status.success(),
        "C compile failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let socket = work.path().join("lunard.sock");
    let daemon = stand_in_daemon(&socket);
    let run = Command::new(&program)
        .arg(&socket)
        .output()
        .expect("run the C program");
    daemon.join().expect("stand-in daemon");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C program failed: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected = "\
size 1500 devices 2
ask status -8 count 2
plan status 0 count 2
extent disk-a 4996 100 0
extent disk-b 0 100 100
bad layout -6: layout is not usable: layout node root: concat has no members
rpc status 0 result {\"version\":\"0.1.0\"}
rpc status -5 code 1003 error volume 'v' is in use
";
    assert_eq!(stdout, expected);
}
