//! InfluxDB 2's metadata backup travels as one `multipart/mixed` body (parts `kv`, `sql`,
//! `buckets`): the server writes it, `ctl backup` reads it. Reading is multer's; writing is
//! the few lines the format takes, kept beside it so that a round trip proves them together.

use bytes::Bytes;

/// One part of a body: its name (as `Content-Disposition` gives it), type and bytes.
pub(crate) struct Part<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum MultipartError {
    #[error("no multipart boundary in Content-Type {0:?}")]
    NoBoundary(String),
    #[error("multipart body: {0}")]
    Body(#[from] multer::Error),
}

/// The body of `parts` between delimiters made of `boundary`, and its `Content-Type`.
/// `boundary` must not occur in any part's bytes (a random one, in practice).
pub(crate) fn write(boundary: &str, parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let bytes: usize = parts.iter().map(|p| p.body.len()).sum();
    let mut body = Vec::with_capacity(bytes + 128 * (parts.len() + 1));
    for part in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: attachment; name=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                part.name, part.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}

/// The parts of a multipart body (any subtype), in order, by name.
pub(crate) async fn read(
    content_type: &str,
    body: Bytes,
) -> Result<Vec<(String, Vec<u8>)>, MultipartError> {
    let boundary = content_type
        .parse::<mime::Mime>()
        .ok()
        .filter(|m| m.type_() == mime::MULTIPART)
        .and_then(|m| m.get_param(mime::BOUNDARY).map(|b| b.as_str().to_owned()))
        .ok_or_else(|| MultipartError::NoBoundary(content_type.to_owned()))?;
    let chunks = futures_util::stream::once(async { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(chunks, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        parts.push((name, field.bytes().await?.to_vec()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_now(
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Vec<(String, Vec<u8>)>, MultipartError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(read(content_type, Bytes::from(body)))
    }

    #[test]
    fn parts_written_read_back_by_name() {
        let kv: Vec<u8> = (0..=255).collect();
        let buckets = br#"[{"bucketName":"b"}]"#;
        let parts = [
            Part {
                name: "kv",
                content_type: "application/octet-stream",
                body: &kv,
            },
            Part {
                name: "sql",
                content_type: "application/octet-stream",
                body: b"",
            },
            Part {
                name: "buckets",
                content_type: "application/json; charset=utf-8",
                body: buckets,
            },
        ];
        let (content_type, body) = write("shardkeeper-0123456789abcdef", &parts);
        assert_eq!(
            content_type,
            "multipart/mixed; boundary=shardkeeper-0123456789abcdef"
        );
        let read = read_now(&content_type, body).unwrap();
        assert_eq!(
            read,
            vec![
                ("kv".to_owned(), kv),
                ("sql".to_owned(), Vec::new()),
                ("buckets".to_owned(), buckets.to_vec()),
            ]
        );
    }

    /// InfluxDB 2's own body (as `influx backup` reads it) reads the same way.
    #[test]
    fn an_influxdb_body_reads_by_name() {
        let body = b"--b1\r\nContent-Disposition: attachment; name=\"kv\"\r\n\r\n\x00\x01\r\n--b1\r\nContent-Disposition: attachment; name=\"sql\"\r\n\r\n\r\n--b1--\r\n";
        let parts = read_now("multipart/mixed; boundary=b1", body.to_vec()).unwrap();
        assert_eq!(
            parts,
            vec![("kv".to_owned(), vec![0, 1]), ("sql".to_owned(), vec![])]
        );
    }

    #[test]
    fn a_body_without_boundary_is_refused() {
        assert!(matches!(
            read_now("application/json", Vec::new()),
            Err(MultipartError::NoBoundary(_))
        ));
    }
}
