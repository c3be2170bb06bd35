//! The blob bucket (S3): customer photos and try-on results, every key under
//! `tenants/<tenant id>/`, so a key built from a `TenantScope` can only name
//! the caller's own objects (and IAM can grant a function `tenants/*` only).
//! Clients upload and download directly with presigned URLs; the functions
//! only sign, check and copy.

use std::time::Duration;

use aws_sdk_s3::{
    operation::{get_object::GetObjectError, head_object::HeadObjectError},
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::{Delete, ObjectIdentifier},
};

use crate::{
    auth::TenantScope,
    error::{AppError, AppResult},
};

/// Image types the platform accepts, by content type, with their magic bytes.
pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

/// The content type the first bytes of a file show, if it is one we accept.
pub fn sniff_image_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The prefix of everything a tenant stores.
pub fn tenant_prefix(scope: &TenantScope) -> String {
    format!("tenants/{}/", scope.tenant_id())
}

/// A presigned upload: PUT the bytes to `url` with exactly these headers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PresignedUpload {
    pub method: &'static str,
    pub url: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub expires_at: String,
}

/// What S3 says of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: i64,
    pub content_type: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Blobs {
    client: crate::aws::S3Client,
    bucket: Option<String>,
}

impl Blobs {
    pub fn new(client: crate::aws::S3Client, bucket: Option<String>) -> Self {
        Self { client, bucket }
    }

    fn bucket(&self) -> AppResult<&str> {
        self.bucket.as_deref().ok_or_else(|| AppError::internal(anyhow::anyhow!("BLOB_BUCKET_NAME is not set")))
    }

    fn presigning(expires_in: Duration) -> AppResult<PresigningConfig> {
        PresigningConfig::expires_in(expires_in).map_err(AppError::internal)
    }

    /// A URL to PUT `key` with this content type (the type is signed: another
    /// one is refused by S3). The size is checked when the upload is confirmed.
    pub async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> AppResult<PresignedUpload> {
        let request = self
            .client
            .put_object()
            .bucket(self.bucket()?)
            .key(key)
            .content_type(content_type)
            .presigned(Self::presigning(expires_in)?)
            .await
            .map_err(AppError::internal)?;
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), content_type.into());
        let expires_at =
            crate::domain::rfc3339(crate::domain::now() + chrono::Duration::from_std(expires_in).unwrap_or_default());
        Ok(PresignedUpload { method: "PUT", url: request.uri().to_owned(), headers, expires_at })
    }

    /// A URL to GET `key` until it expires.
    pub async fn presign_download(&self, key: &str, expires_in: Duration) -> AppResult<String> {
        let request = self
            .client
            .get_object()
            .bucket(self.bucket()?)
            .key(key)
            .presigned(Self::presigning(expires_in)?)
            .await
            .map_err(AppError::internal)?;
        Ok(request.uri().to_owned())
    }

    /// The bucket answers (HeadBucket): the admin health check.
    pub async fn reachable(&self) -> AppResult<()> {
        self.client.head_bucket().bucket(self.bucket()?).send().await?;
        Ok(())
    }

    pub async fn head(&self, key: &str) -> AppResult<Option<ObjectInfo>> {
        match self.client.head_object().bucket(self.bucket()?).key(key).send().await {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0),
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(err) if matches!(err.as_service_error(), Some(HeadObjectError::NotFound(_))) => Ok(None),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(err) => Err(AppError::internal(anyhow::anyhow!(
                "S3 HeadObject failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            ))),
        }
    }

    /// The first `n` bytes of `key` (fewer if it is shorter).
    pub async fn first_bytes(&self, key: &str, n: usize) -> AppResult<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(self.bucket()?)
            .key(key)
            .range(format!("bytes=0-{}", n.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| {
                AppError::internal(anyhow::anyhow!(
                    "S3 GetObject failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        let bytes = out.body.collect().await.map_err(AppError::internal)?.into_bytes();
        Ok(bytes[..bytes.len().min(n)].to_vec())
    }

    /// The whole object, or `None` if there is none.
    pub async fn get(&self, key: &str) -> AppResult<Option<Vec<u8>>> {
        match self.client.get_object().bucket(self.bucket()?).key(key).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(AppError::internal)?.into_bytes().to_vec())),
            Err(err) if matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => Ok(None),
            Err(err) => Err(AppError::internal(anyhow::anyhow!(
                "S3 GetObject failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            ))),
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> AppResult<()> {
        self.put_tagged(key, bytes, content_type, None).await
    }

    /// [`Self::put`] with object tags (`k=v&k2=v2`): what a bucket
    /// lifecycle rule filters on.
    pub async fn put_tagged(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        tagging: Option<&str>,
    ) -> AppResult<()> {
        self.client
            .put_object()
            .bucket(self.bucket()?)
            .key(key)
            .content_type(content_type)
            .set_tagging(tagging.map(str::to_owned))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| {
                AppError::internal(anyhow::anyhow!(
                    "S3 PutObject failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> AppResult<()> {
        self.client.delete_object().bucket(self.bucket()?).key(key).send().await.map_err(|e| {
            AppError::internal(anyhow::anyhow!(
                "S3 DeleteObject failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok(())
    }

    /// The bytes stored under `prefix` (the storage meter's sample): one
    /// ListObjectsV2 per 1,000 objects.
    pub async fn total_size(&self, prefix: &str) -> AppResult<i64> {
        let mut total = 0_i64;
        self.each_listed(prefix, |objects| total += objects.iter().filter_map(|o| o.size()).sum::<i64>()).await?;
        Ok(total)
    }

    /// The key and size of every object under `prefix`, in key order: one
    /// ListObjectsV2 per 1,000 objects.
    pub async fn list(&self, prefix: &str) -> AppResult<Vec<(String, i64)>> {
        let mut found = Vec::new();
        self.each_listed(prefix, |objects| {
            found.extend(objects.iter().filter_map(|o| Some((o.key()?.to_owned(), o.size().unwrap_or(0)))))
        })
        .await?;
        Ok(found)
    }

    /// Every page of ListObjectsV2 under `prefix`, in key order, handed to
    /// `each` as it arrives (a sum needs no list of every key).
    async fn each_listed(&self, prefix: &str, mut each: impl FnMut(&[aws_sdk_s3::types::Object])) -> AppResult<()> {
        let bucket = self.bucket()?;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    AppError::internal(anyhow::anyhow!(
                        "S3 ListObjectsV2 failed: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ))
                })?;
            each(page.contents());
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(()),
            }
        }
    }

    /// Deletes every object under `prefix` (a page of up to 1,000 at a time);
    /// answers how many. Deleting what is already gone is not an error, so a
    /// retry finishes what a failed attempt started.
    pub async fn delete_prefix(&self, prefix: &str) -> AppResult<usize> {
        let bucket = self.bucket()?;
        let mut deleted = 0;
        loop {
            let page = self.client.list_objects_v2().bucket(bucket).prefix(prefix).send().await.map_err(|e| {
                AppError::internal(anyhow::anyhow!(
                    "S3 ListObjectsV2 failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
            let keys: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            if keys.is_empty() {
                return Ok(deleted);
            }
            deleted += keys.len();
            let delete = Delete::builder().set_objects(Some(keys)).quiet(true).build().map_err(AppError::internal)?;
            self.client.delete_objects().bucket(bucket).delete(delete).send().await.map_err(|e| {
                AppError::internal(anyhow::anyhow!(
                    "S3 DeleteObjects failed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_are_told_by_their_first_bytes() {
        assert_eq!(sniff_image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image_type(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image_type(b"GIF89a"), None);
        assert_eq!(sniff_image_type(b"<svg"), None);
        assert_eq!(sniff_image_type(b""), None);
    }

    #[test]
    fn tenant_objects_share_one_prefix() {
        let id = uuid::Uuid::nil();
        assert_eq!(tenant_prefix(&crate::auth::proofs::NewTenant::scope(id)), format!("tenants/{id}/"));
    }
}
