"""boto3 driver for the e2e tests.

Reads one JSON command per line on stdin, runs it with a boto3 S3 client,
and writes one JSON result per line on stdout. Credentials, region and
config come from the environment the Go test sets (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_CONFIG_FILE, ...); the endpoint is argv[1].

Result: {"ok": true, ...} or {"ok": false, "code": ..., "status": ...,
"message": ...}. Bodies go to and come from files named in the command.
"""

import json
import sys

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig


def main():
    endpoint = sys.argv[1]
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            signature_version="s3v4",
        ),
    )
    single = TransferConfig(multipart_threshold=4 << 30, multipart_chunksize=4 << 30)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        try:
            res = run(client, single, cmd)
            res["ok"] = True
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            res = {
                "ok": False,
                "code": err.get("Code", ""),
                "message": err.get("Message", ""),
                "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
            }
        except Exception as e:  # connection aborted, checksum mismatch, ...
            res = {"ok": False, "code": type(e).__name__, "message": str(e), "status": 0}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


def run(client, single, cmd):
    op = cmd["op"]
    b, k = cmd.get("bucket"), cmd.get("key")
    if op == "put":
        with open(cmd["file"], "rb") as f:
            r = client.put_object(Bucket=b, Key=k, Body=f, Metadata=cmd.get("metadata", {}))
        return {"etag": r["ETag"]}
    if op == "get":
        kw = {"Bucket": b, "Key": k}
        if cmd.get("range"):
            kw["Range"] = cmd["range"]
        r = client.get_object(**kw)
        n = 0
        with open(cmd["file"], "wb") as f:
            for chunk in r["Body"].iter_chunks(1 << 20):
                f.write(chunk)
                n += len(chunk)
        return {
            "etag": r["ETag"],
            "content_length": r["ContentLength"],
            "content_range": r.get("ContentRange", ""),
            "metadata": r.get("Metadata", {}),
            "read": n,
        }
    if op == "head":
        r = client.head_object(Bucket=b, Key=k)
        return {"etag": r["ETag"], "content_length": r["ContentLength"], "metadata": r.get("Metadata", {})}
    if op == "list":
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix=cmd.get("prefix", "")):
            for o in page.get("Contents", []):
                out.append({"key": o["Key"], "size": o["Size"], "etag": o["ETag"]})
        return {"objects": out}
    if op == "copy":
        r = client.copy_object(Bucket=b, Key=k, CopySource={"Bucket": cmd["src_bucket"], "Key": cmd["src_key"]})
        return {"etag": r["CopyObjectResult"]["ETag"]}
    if op == "delete":
        client.delete_object(Bucket=b, Key=k)
        return {}
    if op == "upload":
        client.upload_file(cmd["file"], b, k, Config=single)
        return {}
    if op == "upload_multipart":
        # 5 MiB parts: a file above 5 MiB goes up as a multipart upload.
        client.upload_file(cmd["file"], b, k, Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
        return {}
    if op == "complete_bad":
        # A Complete naming a part ETag the upload does not have.
        up = client.create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        client.upload_part(Bucket=b, Key=k, UploadId=up, PartNumber=1, Body=b"part one")
        client.complete_multipart_upload(
            Bucket=b, Key=k, UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]},
        )
        return {}
    if op == "download":
        # Default transfer settings: objects above 8 MiB come as parallel
        # ranged GETs.
        client.download_file(b, k, cmd["file"])
        return {}
    raise ValueError("unknown op " + op)


if __name__ == "__main__":
    main()
