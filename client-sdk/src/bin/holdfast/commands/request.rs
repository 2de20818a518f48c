//! `holdfast request METHOD URL`: curl, DPoP-signed.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::agent::{self, explain};
use crate::cli::RequestArgs;
use crate::error::CliError;

/// The body type curl gives `-d`.
const FORM: &str = "application/x-www-form-urlencoded";

pub(crate) fn request(args: &RequestArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CliError::Usage(format!("{:?} is not an HTTP method", args.method)))?;
    let mut headers = headers(&args.headers)?;
    let body = args.data.as_deref().map(data).transpose()?;
    if body.is_some() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(FORM));
    }
    let dir = agent::dir(agent_dir)?;
    let enrolled = agent::load(&dir)?;
    super::block_on(async {
        let client = agent::client(&enrolled).await?;
        let response = client
            .request(method, &args.url, headers, body)
            .await
            .map_err(explain)?;
        let status = response.status();
        eprintln!("{:?} {status}", response.version());
        if args.include {
            for (name, value) in response.headers() {
                eprintln!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
            eprintln!();
        }
        let bytes = response.bytes().await.map_err(|e| {
            CliError::Failed(format!("reading the response from {}: {e}", args.url))
        })?;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::Failed(format!("cannot write standard output: {e}")))?;
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })?
}

/// `-H 'Name: value'` lines as headers. Authorization and DPoP belong to
/// the client: a second one would be refused by any DPoP server anyway.
fn headers(lines: &[String]) -> Result<HeaderMap, CliError> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let bad = || CliError::Usage(format!("-H {line:?}: expected 'Name: value'"));
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        if name == reqwest::header::AUTHORIZATION || name.as_str() == "dpop" {
            return Err(CliError::Usage(format!(
                "-H {name}: holdfast sets Authorization and DPoP itself"
            )));
        }
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// `-d`: the text itself, `@FILE`, or `@-` for standard input.
fn data(arg: &str) -> Result<Vec<u8>, CliError> {
    match arg.strip_prefix('@') {
        None => Ok(arg.as_bytes().to_vec()),
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::Failed(format!("cannot read standard input: {e}")))?;
            Ok(bytes)
        }
        Some(file) => std::fs::read(file).map_err(|e| CliError::Failed(format!("-d @{file}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_name_and_value() {
        let parsed = headers(&["Accept: application/json".into(), "X-A:b ".into()]).unwrap();
        assert_eq!(parsed["accept"], "application/json");
        assert_eq!(parsed["x-a"], "b");
    }

    #[test]
    fn headers_refuse_credentials_and_malformed_lines() {
        for line in [
            "Authorization: Bearer x",
            "dpop: x",
            "no colon",
            "bad name: x",
        ] {
            assert!(
                matches!(headers(&[line.into()]), Err(CliError::Usage(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn data_reads_text_and_files() {
        assert_eq!(data("a=1&b=2").unwrap(), b"a=1&b=2");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"{\"x\":1}").unwrap();
        assert_eq!(
            data(&format!("@{}", file.path().display())).unwrap(),
            b"{\"x\":1}"
        );
        assert!(matches!(
            data("@/nonexistent/holdfast"),
            Err(CliError::Failed(_))
        ));
    }
}
