// SPDX-License-Identifier: MIT
//! storm-read ROOT TRACE: replays a boot's reads (qemu-tests/storm): for each line
//! "BYTES PATH" of TRACE (the load VM's form of trace-ROOT.tsv in qemu-tests/bench-data/), reads the
//! first BYTES bytes of ROOT/PATH, in 256 KiB reads, one file after the other, as one
//! process. One program, not a shell loop of `head -c`: thousands of forks per client would
//! cost the load VM's one TCG CPU more than the reads. Prints one line,
//! "files=N bytes=N errors=N ms=N first_error=<path: error>|-", and exits 0 when every file
//! could be read, 1 when one could not, 2 on a bad argument or trace.
//! A file shorter than its BYTES is read to its end and is no error (the trace was taken
//! from another build of the root).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::exit;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: storm-read ROOT TRACE");
        exit(2);
    }
    let root = Path::new(&args[1]);
    let trace = match File::open(&args[2]) {
        Ok(f) => BufReader::new(f),
        Err(e) => {
            eprintln!("storm-read: {}: {e}", args[2]);
            exit(2);
        }
    };
    let t0 = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut files, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = String::from("-");
    for line in trace.lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("storm-read: {}: {e}", args[2]);
                exit(2);
            }
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((want, path)) = line.split_once(' ') else {
            eprintln!("storm-read: {}: not 'BYTES PATH': {line}", args[2]);
            exit(2);
        };
        let Ok(want) = want.parse::<u64>() else {
            eprintln!("storm-read: {}: not a byte count: {line}", args[2]);
            exit(2);
        };
        files += 1;
        match read_prefix(&root.join(path.trim_start_matches('/')), want, &mut buf) {
            Ok(n) => bytes += n,
            Err(e) => {
                errors += 1;
                if first_error == "-" {
                    first_error = format!("{path}: {e}");
                }
            }
        }
    }
    println!(
        "files={files} bytes={bytes} errors={errors} ms={} first_error={}",
        t0.elapsed().as_millis(),
        first_error.replace('\n', " ")
    );
    exit(if errors == 0 { 0 } else { 1 });
}

/// Reads up to `want` bytes from the start of `path`; the number read.
fn read_prefix(path: &Path, want: u64, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut got = 0u64;
    while got < want {
        let chunk = (want - got).min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..chunk])?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    Ok(got)
}
