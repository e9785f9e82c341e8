//! Requests written to files exactly as received, and read back to replay
//! them: what `chatbase listen --capture DIR` writes and `chatbase send
//! --replay DIR` reads.
//!
//! Each request is one file, `<milliseconds since 1970>-<n>.http`, holding
//! the request as HTTP/1.1 text: the request line, the headers as received
//! (names in lower case), an empty line, then the body's bytes, unchanged, to
//! the end of the file. `nc` or `curl --data-binary` can send one again, and
//! [`CapturedRequest::to_outgoing`] does, with its original signature.
//!
//! The files hold customer data (emails, phone numbers) and a signature
//! valid for their body: on Unix they are readable by their owner only.
//! Delete them when done.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chatbase_core::SIGNATURE_HEADER;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::send::Outgoing;

/// The extension of capture files: `.http`.
pub const EXTENSION: &str = "http";

/// The most headers a capture file may hold.
const MAX_HEADERS: usize = 256;

/// One request as received: method, path (with the query), headers and
/// body.
///
/// Its `Debug` shows neither the header values nor the body.
#[derive(Clone)]
pub struct CapturedRequest {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

impl CapturedRequest {
    /// A request: `target` is the path and query, e.g. `/webhook?x=1`.
    pub fn new(method: Method, target: impl Into<String>, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            method,
            target: target.into(),
            headers,
            body,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, byte for byte.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `x-chatbase-signature` header, if there is one (the first, if
    /// there are several).
    pub fn signature(&self) -> Option<&HeaderValue> {
        self.headers.get(SIGNATURE_HEADER)
    }

    /// The request to send again: same method, body, signature header and
    /// content type.
    pub fn to_outgoing(&self) -> Outgoing {
        Outgoing::with_signature(self.body.clone(), self.signature().cloned())
            .with_method(self.method.clone())
            .with_content_type(self.headers.get(CONTENT_TYPE).cloned())
    }

    /// The request as HTTP/1.1 text: head, empty line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads a request written by [`CapturedRequest::to_bytes`] (or any
    /// HTTP/1.x request): the body is every byte after the head.
    ///
    /// # Errors
    ///
    /// [`CaptureError`] if the head is not a complete HTTP request head.
    pub fn parse(bytes: &[u8]) -> Result<Self, CaptureError> {
        let invalid = |problem: String| CaptureError {
            path: None,
            problem,
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return Err(invalid(
                    "the request head is incomplete: it must end with an empty line".to_owned(),
                ));
            }
            Err(error) => return Err(invalid(format!("not an HTTP request: {error}"))),
        };
        let method = request
            .method
            .and_then(|method| Method::from_bytes(method.as_bytes()).ok())
            .ok_or_else(|| invalid("no valid method".to_owned()))?;
        let target = request.path.unwrap_or("/").to_owned();
        let mut map = HeaderMap::new();
        for header in request.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name {:?}", header.name)))?;
            let value = HeaderValue::from_bytes(header.value)
                .map_err(|_| invalid(format!("invalid value for header {name}")))?;
            map.append(name, value);
        }
        let body = Bytes::copy_from_slice(bytes.get(head_len..).unwrap_or_default());
        Ok(Self::new(method, target, map, body))
    }
}

impl std::fmt::Debug for CapturedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturedRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A capture file that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", path.as_ref().map(|path| format!("{}: ", path.display())).unwrap_or_default())]
pub struct CaptureError {
    path: Option<PathBuf>,
    problem: String,
}

/// A directory that captured requests are written to, one new file each.
#[derive(Debug)]
pub struct CaptureDir {
    path: PathBuf,
    count: AtomicU64,
}

impl CaptureDir {
    /// Uses the directory `path`, creating it if needed.
    ///
    /// # Errors
    ///
    /// If it cannot be created.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path)?;
        Ok(Self {
            path,
            count: AtomicU64::new(0),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `request` to a new file, never over an existing one, readable
    /// by its owner only (on Unix), and returns its path. File names sort in
    /// the order requests were written.
    ///
    /// # Errors
    ///
    /// If the file cannot be written.
    pub fn write(&self, request: &CapturedRequest) -> io::Result<PathBuf> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        loop {
            let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            let path = self.path.join(format!("{millis:013}-{n:06}.{EXTENSION}"));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(mut file) => {
                    file.write_all(&request.to_bytes())?;
                    file.sync_all()?;
                    return Ok(path);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// The captured requests at `path`: the file itself, or every `.http` file
/// in the directory, in name order (the order they were captured).
///
/// # Errors
///
/// [`CaptureError`] if `path` cannot be read, holds no capture file, or a
/// file is not a request.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<(PathBuf, CapturedRequest)>, CaptureError> {
    let path = path.as_ref();
    let at = |path: &Path, problem: String| CaptureError {
        path: Some(path.to_owned()),
        problem,
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|error| at(path, format!("cannot read the directory: {error}")))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|file| file.extension().is_some_and(|ext| ext == EXTENSION) && file.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(at(
                path,
                format!("no captured request (*.{EXTENSION} file) in it"),
            ));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    files
        .into_iter()
        .map(|file| {
            let bytes =
                fs::read(&file).map_err(|error| at(&file, format!("cannot read it: {error}")))?;
            let request =
                CapturedRequest::parse(&bytes).map_err(|error| at(&file, error.problem))?;
            Ok((file, request))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &'static [u8]) -> CapturedRequest {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_static("ABCdef"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        headers.insert("x-latin1", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        CapturedRequest::new(
            Method::POST,
            "/webhook?x=1",
            headers,
            Bytes::from_static(body),
        )
    }

    #[test]
    fn round_trips_byte_for_byte() {
        for body in [
            &b""[..],
            b"{\"a\":1}",
            b"\r\n\r\nbody with an empty line\r\n\r\n",
            b"\x00\xff binary",
        ] {
            let original = request(body);
            let bytes = original.to_bytes();
            let read = CapturedRequest::parse(&bytes).unwrap();
            assert_eq!(read.method(), Method::POST);
            assert_eq!(read.target(), "/webhook?x=1");
            assert_eq!(read.headers(), original.headers());
            assert_eq!(read.body(), body);
            assert_eq!(read.to_bytes(), bytes);
        }
    }

    #[test]
    fn the_file_is_http_text() {
        let text = String::from_utf8_lossy(&request(b"{}").to_bytes()).into_owned();
        assert!(text.starts_with("POST /webhook?x=1 HTTP/1.1\r\n"), "{text}");
        assert!(
            text.contains("\r\nx-chatbase-signature: ABCdef\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n{}"), "{text}");
    }

    #[test]
    fn to_outgoing_keeps_method_body_signature_and_content_type() {
        let outgoing = request(b"{\"a\":1}").to_outgoing();
        assert_eq!(outgoing.method(), Method::POST);
        assert_eq!(outgoing.body(), "{\"a\":1}");
        assert_eq!(outgoing.signature().unwrap(), "ABCdef");
        assert_eq!(outgoing.content_type().unwrap(), "application/json");

        let bare = CapturedRequest::new(Method::PUT, "/", HeaderMap::new(), Bytes::new());
        let outgoing = bare.to_outgoing();
        assert_eq!(outgoing.method(), Method::PUT);
        assert!(outgoing.signature().is_none());
        assert!(outgoing.content_type().is_none());
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        for bad in [
            &b""[..],
            b"POST / HTTP/1.1\r\nx: y\r\n",
            b"\x00\x01",
            b"POST / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert!(CapturedRequest::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_directory_is_written_and_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!(
            "chatbase-cli-capture-{}",
            crate::send::new_conversation_id()
        ));
        let capture = CaptureDir::create(&dir).unwrap();
        let first = capture.write(&request(b"1")).unwrap();
        let second = capture.write(&request(b"2")).unwrap();
        assert_ne!(first, second);
        fs::write(dir.join("notes.txt"), "ignored").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&first).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = read(&dir).unwrap();
        let bodies: Vec<_> = read
            .iter()
            .map(|(_, request)| request.body().clone())
            .collect();
        assert_eq!(bodies, ["1", "2"]);
        assert_eq!(read[0].0, first);
        // One file on its own.
        assert_eq!(super::read(&second).unwrap().len(), 1);

        let empty = dir.join("empty");
        fs::create_dir(&empty).unwrap();
        let error = super::read(&empty).unwrap_err().to_string();
        assert!(error.contains("no captured request"), "{error}");
        fs::write(dir.join("broken.http"), "nonsense").unwrap();
        let error = super::read(&dir).unwrap_err().to_string();
        assert!(error.contains("broken.http"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
