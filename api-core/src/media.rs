//! Uploaded images: which kinds are accepted (judged by their bytes, never by the name
//! or the declared type) and where they are kept. Files are named by the SHA-256 of
//! their bytes, so a URL never changes meaning and can be cached forever. Local disk
//! today; an S3-compatible store can come later behind [`MediaStore`].

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The largest image accepted.
pub const MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;
/// Where the query API serves media: `<prefix><store_id>/<name>`.
pub const MEDIA_URL_PREFIX: &str = "/api/v1/public/media/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageKind {
    const ALL: [Self; 4] = [Self::Jpeg, Self::Png, Self::Webp, Self::Gif];

    /// The kind the bytes really are, if it is one of the accepted ones.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let mime = infer::get(bytes)?.mime_type();
        Self::ALL
            .into_iter()
            .find(|kind| kind.content_type() == mime)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }

    fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.extension() == extension)
    }
}

/// A media file's name: `<sha256 hex>.<extension>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaName {
    digest: String,
    pub kind: ImageKind,
}

impl MediaName {
    pub fn of(bytes: &[u8], kind: ImageKind) -> Self {
        Self {
            digest: hex::encode(Sha256::digest(bytes)),
            kind,
        }
    }

    /// Reads a name from a URL; anything that this type did not produce is refused,
    /// which also keeps paths like `../x` away from the disk.
    pub fn parse(raw: &str) -> Option<Self> {
        let (digest, extension) = raw.split_once('.')?;
        let valid = digest.len() == 64
            && digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        Some(Self {
            digest: valid.then(|| digest.to_owned())?,
            kind: ImageKind::from_extension(extension)?,
        })
    }

    /// Also the ETag: the name is the content.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn file_name(&self) -> String {
        format!("{}.{}", self.digest, self.kind.extension())
    }

    pub fn url(&self, store_id: Uuid) -> String {
        format!("{MEDIA_URL_PREFIX}{store_id}/{}", self.file_name())
    }
}

/// Where media bytes live.
pub trait MediaStore: Send + Sync {
    /// Stores the bytes under the name (a no-op when they are already there).
    fn put<'a>(
        &'a self,
        store_id: Uuid,
        name: &'a MediaName,
        bytes: Bytes,
    ) -> BoxFuture<'a, io::Result<()>>;

    fn get<'a>(
        &'a self,
        store_id: Uuid,
        name: &'a MediaName,
    ) -> BoxFuture<'a, io::Result<Option<Bytes>>>;

    /// Removes every file of the store (a deleted store's); nothing there is success.
    fn remove_store(&self, store_id: Uuid) -> BoxFuture<'_, io::Result<()>>;
}

pub type Media = Arc<dyn MediaStore>;

/// Media in a directory: `<root>/<store_id>/<name>`.
pub struct LocalMedia {
    root: PathBuf,
}

impl LocalMedia {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, store_id: Uuid, name: &MediaName) -> PathBuf {
        self.root.join(store_id.to_string()).join(name.file_name())
    }
}

async fn write_once(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if tokio::fs::try_exists(path).await? {
        return Ok(());
    }
    if let Some(directory) = path.parent() {
        tokio::fs::create_dir_all(directory).await?;
    }
    // Written aside, synced, then renamed: a reader never sees half a file, and a crash
    // leaves at most a stray temporary file.
    let temporary = path.with_extension(format!("{}.part", Uuid::new_v4().simple()));
    let mut file = tokio::fs::File::create(&temporary).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    tokio::fs::rename(&temporary, path).await
}

impl MediaStore for LocalMedia {
    fn put<'a>(
        &'a self,
        store_id: Uuid,
        name: &'a MediaName,
        bytes: Bytes,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { write_once(&self.path(store_id, name), &bytes).await })
    }

    fn get<'a>(
        &'a self,
        store_id: Uuid,
        name: &'a MediaName,
    ) -> BoxFuture<'a, io::Result<Option<Bytes>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(store_id, name)).await {
                Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            }
        })
    }

    fn remove_store(&self, store_id: Uuid) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_dir_all(self.root.join(store_id.to_string())).await {
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                done => done,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn kinds_come_from_the_bytes() {
        assert_eq!(ImageKind::sniff(PNG), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(b"GIF89a......"), Some(ImageKind::Gif));
        assert_eq!(ImageKind::sniff(b"%PDF-1.7 not an image"), None);
        assert_eq!(
            ImageKind::sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            None
        );
    }

    #[test]
    fn names_are_digests_and_nothing_else_parses() {
        let name = MediaName::of(PNG, ImageKind::Png);
        assert_eq!(MediaName::parse(&name.file_name()), Some(name.clone()));
        assert_eq!(MediaName::parse("../../etc/passwd"), None);
        assert_eq!(MediaName::parse(&format!("{}.exe", name.digest())), None);
        assert_eq!(MediaName::parse("abc.png"), None);
    }
}
