package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkkms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/internal/testenv"
	"github.com/s3seal/s3seal/kms"
)

// Proxies sharing one embedded keyring through the KMS API (kmsapi):
// one proxy serves its keyring (serve --kms-listen) or a key server does
// (kms serve), and the others use it as AWS KMS (S3SEAL_KMS=aws).

func put(t *testing.T, p *testenv.S3seal, bucket, key string, body []byte) {
	t.Helper()
	if _, err := p.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PUT %s/%s through %s: %v", bucket, key, p.Endpoint, err)
	}
}

func get(t *testing.T, p *testenv.S3seal, bucket, key string) []byte {
	t.Helper()
	out, err := p.S3Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s through %s: %v", bucket, key, p.Endpoint, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// auditEvents reads an audit log file.
func auditEvents(t *testing.T, path string) []kms.AuditEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []kms.AuditEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev kms.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestProxiesShareKeyring: proxy A keeps the keyring and serves it over
// the KMS API; proxies B and C use it as their AWS KMS. Each reads what
// the others wrote.
func TestProxiesShareKeyring(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(t.TempDir(), "audit.log")
	a := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), map[string]string{
		"S3SEAL_KMS_LISTEN": "127.0.0.1:" + strconv.Itoa(port),
		"S3SEAL_AUDIT_LOG":  audit,
	}))
	kmsEnv := testenv.KMSClientEnv("http://127.0.0.1:"+strconv.Itoa(port), a.AccessKey, a.SecretKey)
	b := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), kmsEnv))
	c := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), kmsEnv, map[string]string{"S3SEAL_DEK_CACHE_MAX_USES": "0"}))
	bucket := newBucket(t, "kmsapi-share")

	proxies := map[string]*testenv.S3seal{"a": a, "b": b, "c": c}
	for wname, w := range proxies {
		body := bytes.Repeat([]byte("written by "+wname+" "), 10000)
		put(t, w, bucket, "from-"+wname, body)
		assertCiphertextAtRest(t, bucket, "from-"+wname, body)
		for rname, r := range proxies {
			testenv.AssertSame(t, fmt.Sprintf("%s reads %s's object", rname, wname), get(t, r, bucket, "from-"+wname), body)
		}
	}

	// A's audit log has its own calls (the proxy's, through the keyring)
	// and B's and C's (through the API, as A's identity).
	var own, api int
	for _, ev := range auditEvents(t, audit) {
		switch ev.UserIdentity.Type {
		case "s3seal":
			own++
		case "IAMUser":
			if ev.UserIdentity.AccessKeyID != a.AccessKey || ev.ErrorCode != "" {
				t.Errorf("API event %+v", ev)
			}
			if ev.EventName == "GenerateDataKey" && ev.RequestParameters.EncryptionContext["s3seal:bucket"] != bucket {
				t.Errorf("GenerateDataKey without the bucket context: %+v", ev)
			}
			api++
		}
	}
	if own == 0 || api < 4 {
		t.Fatalf("audit: %d calls of A's proxy, %d API calls", own, api)
	}
}

// TestKMSServe: a key server alone (s3seal kms serve) shared by two
// proxies; its keyring is the one `s3seal keys` manages.
func TestKMSServe(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.log")
	ks := testenv.StartKMSServer(t, map[string]string{"S3SEAL_AUDIT_LOG": audit})
	// The key server creates no key by itself: create the proxies'
	// default key through the API, as an operator would with aws kms.
	api := sdkkms.New(sdkkms.Options{Region: testenv.Region, BaseEndpoint: aws.String(ks.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(ks.AccessKey, ks.SecretKey, "")})
	ctx := context.Background()
	k, err := api.CreateKey(ctx, &sdkkms.CreateKeyInput{Description: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateAlias(ctx, &sdkkms.CreateAliasInput{AliasName: aws.String("alias/shared"), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	env := withEnv(store.UpstreamEnv(), testenv.KMSClientEnv(ks.Endpoint, ks.AccessKey, ks.SecretKey), map[string]string{"S3SEAL_KMS_KEY_ID": "alias/shared"})
	p1, p2 := testenv.StartS3seal(t, env), testenv.StartS3seal(t, env)
	bucket := newBucket(t, "kmsapi-serve")
	body := bytes.Repeat([]byte("shared key server "), 50000)
	put(t, p1, bucket, "obj", body)
	testenv.AssertSame(t, "p2 reads p1's object", get(t, p2, bucket, "obj"), body)
	assertCiphertextAtRest(t, bucket, "obj", body)
	names := map[string]int{}
	for _, ev := range auditEvents(t, audit) {
		names[ev.EventName]++
	}
	if names["CreateKey"] != 1 || names["GenerateDataKey"] < 1 || names["Decrypt"] < 1 {
		t.Fatalf("audit events %v", names)
	}
}

// TestDecryptOnlyProxy: a proxy whose KMS identity may only decrypt
// serves GETs of a shared bucket and refuses PUTs with AccessDenied,
// storing nothing.
func TestDecryptOnlyProxy(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	owner, reader := "OWNER"+strings.ToUpper(testenv.RandomKey(4)), "READER"+strings.ToUpper(testenv.RandomKey(4))
	creds := filepath.Join(t.TempDir(), "credentials.json")
	cf, _ := json.Marshal(map[string]any{"identities": []map[string]any{
		{"access_key": owner, "secret_key": "owner-secret", "buckets": []string{"*"}},
		{"access_key": reader, "secret_key": "reader-secret", "buckets": []string{"*"}},
	}})
	if err := os.WriteFile(creds, cf, 0o600); err != nil {
		t.Fatal(err)
	}
	kmsURL := "http://127.0.0.1:" + strconv.Itoa(port)
	a := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), map[string]string{
		"S3SEAL_KMS_LISTEN": "127.0.0.1:" + strconv.Itoa(port), "S3SEAL_KMS_ADMINS": owner,
		"S3SEAL_CREDENTIALS_FILE": creds, "S3SEAL_ACCESS_KEY": "", "S3SEAL_SECRET_KEY": "",
	}))
	// The owner gives the reader kms:Decrypt (and DescribeKey, the
	// proxy's readiness probe) on the default key, nothing else.
	api := sdkkms.New(sdkkms.Options{Region: testenv.Region, BaseEndpoint: aws.String(kmsURL),
		Credentials: credentials.NewStaticCredentialsProvider(owner, "owner-secret", "")})
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/%s"},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}`, reader)
	if _, err := api.PutKeyPolicy(context.Background(), &sdkkms.PutKeyPolicyInput{KeyId: aws.String("alias/s3seal-default"), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	bucket := newBucket(t, "kmsapi-readonly")
	body := bytes.Repeat([]byte("shared read-only "), 5000)
	owned := testenv.NewS3Client(a.Endpoint, owner, "owner-secret")
	if _, err := owned.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("shared"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}

	ro := testenv.StartS3seal(t, withEnv(store.UpstreamEnv(), testenv.KMSClientEnv(kmsURL, reader, "reader-secret")))
	testenv.AssertSame(t, "GET through the decrypt-only proxy", get(t, ro, bucket, "shared"), body)
	_, err = ro.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("new"), Body: bytes.NewReader(body)})
	t.Logf("PUT through the decrypt-only proxy: %v", err)
	if code, status := testenv.APIError(err); code != "AccessDenied" || status != 403 {
		t.Fatalf("PUT through the decrypt-only proxy: %v (%s %d)", err, code, status)
	}
	if existsInStore(t, bucket, "new") {
		t.Fatal("the refused PUT stored an object")
	}
}
