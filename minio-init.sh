#!/bin/sh
# Gives s3seal a MinIO user of its own (compose.yaml's minio-init service):
# creates the buckets named in S3SEAL_BUCKETS, a policy that allows every
# S3 action on those buckets and their objects and nothing else (no other
# bucket, no administration), and the user S3SEAL_STORE_ACCESS_KEY with
# that policy. s3seal then never holds MinIO's root credentials. Safe to
# run again: the buckets are kept, the policy and the user's secret are
# set anew.
#
# Runs with busybox sh (the image is distroless :debug) and mc, as the
# MinIO root user, which only this one-shot container sees.
set -eu

: "${MINIO_URL:=http://minio:9000}"
: "${MINIO_ROOT_USER:?set MINIO_ROOT_USER}"
: "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD}"
: "${S3SEAL_STORE_ACCESS_KEY:?set S3SEAL_STORE_ACCESS_KEY}"
: "${S3SEAL_STORE_SECRET_KEY:?set S3SEAL_STORE_SECRET_KEY (8 characters or more)}"
: "${S3SEAL_BUCKETS:?set S3SEAL_BUCKETS (bucket names, space separated)}"

export MC_CONFIG_DIR="${MC_CONFIG_DIR:-/tmp/mc}"
mc="mc --quiet --no-color"

$mc alias set store "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
tries=0
until $mc ready store >/dev/null 2>&1; do
	tries=$((tries + 1))
	[ "$tries" -lt 60 ] || { echo "minio-init: $MINIO_URL not ready after 60 s" >&2; exit 1; }
	sleep 1
done

resources=""
for b in $S3SEAL_BUCKETS; do
	$mc mb --ignore-existing "store/$b"
	resources="$resources\"arn:aws:s3:::$b\",\"arn:aws:s3:::$b/*\","
done
policy="$MC_CONFIG_DIR/s3seal-policy.json"
# ListAllMyBuckets: s3seal's readiness probe is ListBuckets (which then
# shows the names of every bucket, not their contents).
cat >"$policy" <<JSON
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:*"],"Resource":[${resources%,}]},
 {"Effect":"Allow","Action":["s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::*"]}]}
JSON
$mc admin policy create store s3seal "$policy"
$mc admin user add store "$S3SEAL_STORE_ACCESS_KEY" "$S3SEAL_STORE_SECRET_KEY"
$mc admin policy attach store s3seal --user "$S3SEAL_STORE_ACCESS_KEY"
$mc admin user info store "$S3SEAL_STORE_ACCESS_KEY" | grep -q 's3seal' || { echo "minio-init: policy s3seal not attached" >&2; exit 1; }
echo "minio-init: user $S3SEAL_STORE_ACCESS_KEY may use buckets: $S3SEAL_BUCKETS"
