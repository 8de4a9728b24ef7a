// put-get.mjs: PutObject with a stream body of unknown length, then
// GetObject, with @aws-sdk/client-s3 at its default settings.
//
// usage: node put-get.mjs ENDPOINT BUCKET KEY PLAINFILE
// credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY in the environment.
// stdout: one JSON object {sdkVersion, sent, etag, length, sha256}, where
// sent holds the request headers of the PutObject as the SDK sent them and
// length and sha256 describe the body GetObject returned.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

const [endpoint, bucket, key, plainFile] = process.argv.slice(2);
if (!plainFile) {
  console.error("usage: node put-get.mjs ENDPOINT BUCKET KEY PLAINFILE");
  process.exit(2);
}

// The plaintext comes through a generator, so the SDK cannot learn its
// length: Readable.from has no path, no length and no byteLength. The
// SDK (3.1173.0) cannot send such a stream without being told its length
// (it sets x-amz-decoded-content-length to "undefined" and Node refuses the
// header), so ContentLength is given, as the SDK's documentation asks.
function* chunks() {
  const fd = openSync(plainFile, "r");
  try {
    for (;;) {
      const buf = Buffer.alloc(100003); // odd size: chunks straddle everything
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

const client = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
});

// Record the PutObject request headers as sent (after signing).
const sent = {};
client.middlewareStack.add(
  (next, context) => async (args) => {
    if (context.commandName === "PutObjectCommand") {
      Object.assign(sent, args.request.headers);
    }
    return next(args);
  },
  { step: "deserialize", name: "recordHeaders" },
);

const put = await client.send(
  new PutObjectCommand({ Bucket: bucket, Key: key, Body: Readable.from(chunks()),
    ContentLength: statSync(plainFile).size }),
);

const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
const hash = createHash("sha256");
let length = 0;
for await (const c of got.Body) {
  hash.update(c);
  length += c.length;
}

const require = createRequire(import.meta.url);
const sdkVersion = require("@aws-sdk/client-s3/package.json").version;
delete sent.authorization; // carries no secret, but is noise
process.stdout.write(
  JSON.stringify({ sdkVersion, sent, etag: put.ETag, length, sha256: hash.digest("hex") }) + "\n",
);
