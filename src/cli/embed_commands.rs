//! `weightlog embed`: texts in, one embedding per line out.

use std::io::{self, BufRead, BufWriter, Write};

use super::{CliError, EmbedArgs};
use crate::embed::{Backend, Embedder};

pub(super) fn embed(args: EmbedArgs) -> Result<(), CliError> {
    let backend: Backend = args.backend.parse()?;
    let texts = read_lines(&args.file)?;
    let embedder = Embedder::from_env(backend)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = embedder.embed(&refs, args.batch_size)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let write_error = CliError::io(std::path::Path::new("<stdout>"));
    let mut write = || -> io::Result<()> {
        for embedding in &embeddings {
            if args.json {
                // serde_json prints the shortest text that reads back to the same f32.
                serde_json::to_writer(&mut out, embedding)?;
            } else {
                let mut first = true;
                for value in embedding {
                    if !first {
                        out.write_all(b" ")?;
                    }
                    first = false;
                    write!(out, "{value}")?;
                }
            }
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    write().map_err(write_error)
}

fn read_lines(path: &std::path::Path) -> Result<Vec<String>, CliError> {
    let read_error = CliError::io(path);
    let lines: io::Result<Vec<String>> = if path.as_os_str() == "-" {
        io::stdin().lock().lines().collect()
    } else {
        let file = std::fs::File::open(path).map_err(CliError::io(path))?;
        io::BufReader::new(file).lines().collect()
    };
    lines.map_err(read_error)
}
