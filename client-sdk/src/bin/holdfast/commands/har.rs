//! `holdfast har scrub`.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use holdfast_client::har;

use crate::cli::HarScrubArgs;
use crate::error::CliError;

/// Where the scrubbed HAR goes.
enum Target {
    Stdout,
    /// A new file; an existing one only with `--force`.
    File {
        path: PathBuf,
        overwrite: bool,
    },
    /// The input file, replaced through a temporary file and a rename so a
    /// failure never leaves it half-written.
    InPlace(PathBuf),
}

pub(crate) fn scrub(args: &HarScrubArgs) -> Result<ExitCode, CliError> {
    let from_stdin = args.input.as_os_str() == "-";
    let name = if from_stdin {
        "standard input".to_owned()
    } else {
        args.input.display().to_string()
    };
    // Every refusal comes before reading, so nothing is half done.
    let target = target(args, from_stdin)?;

    let bytes = if from_stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::Failed(format!("cannot read standard input: {e}")))?;
        bytes
    } else {
        std::fs::read(&args.input).map_err(|e| CliError::Failed(format!("{name}: {e}")))?
    };
    let mut document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Failed(format!("{name} is not JSON, so not a HAR: {e}")))?;
    let report = har::scrub(&mut document).map_err(|e| {
        CliError::Failed(format!(
            "{name}: {e} (export a HAR from the browser's network panel: \"Save all as HAR\")"
        ))
    })?;
    let mut output = serde_json::to_vec_pretty(&document)
        .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?;
    output.push(b'\n');

    let written = write(&target, &output)?;
    eprintln!("holdfast: removed: {report}");
    if let Some(path) = written {
        eprintln!("holdfast: wrote {}", path.display());
    }
    eprintln!(
        "holdfast: names, e-mail addresses, IP addresses and URLs are kept; read the file before sharing it"
    );
    Ok(ExitCode::SUCCESS)
}

fn target(args: &HarScrubArgs, from_stdin: bool) -> Result<Target, CliError> {
    if args.in_place {
        if from_stdin {
            return Err(CliError::Usage(
                "--in-place needs a file, not standard input".to_owned(),
            ));
        }
        return Ok(Target::InPlace(args.input.clone()));
    }
    let Some(path) = &args.output else {
        return Ok(Target::Stdout);
    };
    if !from_stdin && same_file(&args.input, path) {
        return Err(CliError::Failed(format!(
            "refusing to overwrite the input {}; use --in-place to replace it",
            path.display()
        )));
    }
    if !args.force && path.exists() {
        return Err(CliError::Failed(format!(
            "{} already exists; use --force to overwrite it",
            path.display()
        )));
    }
    Ok(Target::File {
        path: path.clone(),
        overwrite: args.force,
    })
}

/// Writes the output; returns the file written, if any.
fn write(target: &Target, output: &[u8]) -> Result<Option<PathBuf>, CliError> {
    let failed =
        |path: &Path, e: std::io::Error| CliError::Failed(format!("{}: {e}", path.display()));
    match target {
        Target::Stdout => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(output)
                .and_then(|()| stdout.flush())
                .map_err(|e| CliError::Failed(format!("cannot write standard output: {e}")))?;
            Ok(None)
        }
        Target::File { path, overwrite } => {
            let mut options = OpenOptions::new();
            options.write(true);
            if *overwrite {
                options.create(true).truncate(true);
            } else {
                // Checked above too; `create_new` also wins a race.
                options.create_new(true);
            }
            let mut file = options.open(path).map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => CliError::Failed(format!(
                    "{} already exists; use --force to overwrite it",
                    path.display()
                )),
                _ => failed(path, e),
            })?;
            file.write_all(output).map_err(|e| failed(path, e))?;
            Ok(Some(path.clone()))
        }
        Target::InPlace(path) => {
            let mut temporary = path.clone().into_os_string();
            temporary.push(format!(".holdfast-scrub-{}", std::process::id()));
            let temporary = PathBuf::from(temporary);
            // The replacement keeps the original's permissions.
            let result = std::fs::metadata(path).and_then(|original| {
                let mut file = File::create_new(&temporary)?;
                file.write_all(output)?;
                file.sync_all()?;
                file.set_permissions(original.permissions())?;
                std::fs::rename(&temporary, path)
            });
            if let Err(e) = result {
                let _ = std::fs::remove_file(&temporary);
                return Err(failed(path, e));
            }
            Ok(Some(path.clone()))
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
