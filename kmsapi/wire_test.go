package kmsapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3seal/s3seal/kms"
)

// post sends a raw KMS request, signed as ak unless ak is "".
func (e *env) post(t *testing.T, ak, target, ctype, body string, mod func(*http.Request)) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if ak != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: secretOf(ak)}
		if err := sdkv4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", "eu-west-3", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Fatalf("Content-Type %q", ct)
	}
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Fatal("no x-amzn-RequestId")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return resp.StatusCode, m
}

// TestWireErrors: the status and __type of every failure before an
// operation runs, as AWS's JSON services send them.
func TestWireErrors(t *testing.T) {
	e := newEnv(t)
	const json11 = "application/x-amz-json-1.1"
	for _, tc := range []struct {
		name, ak, target, ctype, body string
		mod                           func(*http.Request)
		status                        int
		typ                           string
	}{
		{"unsigned", "", "TrentService.ListKeys", json11, "{}", nil, 400, "MissingAuthenticationTokenException"},
		{"unknown access key", "NOBODY", "TrentService.ListKeys", json11, "{}", nil, 400, "UnrecognizedClientException"},
		{"bad signature", admin, "TrentService.ListKeys", json11, "{}", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=", "Signature=00", 1))
		}, 400, "InvalidSignatureException"},
		{"body changed after signing", admin, "TrentService.ListKeys", json11, "{}", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader("{ }"))
			r.ContentLength = 3
		}, 400, "InvalidSignatureException"},
		{"signed for s3", admin, "TrentService.ListKeys", json11, "{}", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/kms/", "/s3/", 1))
		}, 400, "IncompleteSignatureException"},
		{"unknown operation", admin, "TrentService.Frobnicate", json11, "{}", nil, 400, "UnsupportedOperationException"},
		{"asymmetric operation", admin, "TrentService.Sign", json11, `{"KeyId":"x"}`, nil, 400, "UnsupportedOperationException"},
		{"no target", admin, "", json11, "{}", nil, 400, "UnknownOperationException"},
		{"bad json", admin, "TrentService.ListKeys", json11, "{", nil, 400, "SerializationException"},
		{"wrong member type", admin, "TrentService.DescribeKey", json11, `{"KeyId":5}`, nil, 400, "SerializationException"},
		{"wrong content type", admin, "TrentService.ListKeys", "application/json", "{}", nil, 400, "SerializationException"},
		{"missing key id", admin, "TrentService.DescribeKey", json11, "{}", nil, 400, "ValidationException"},
		{"missing key", admin, "TrentService.DescribeKey", json11, `{"KeyId":"alias/none"}`, nil, 400, "NotFoundException"},
		{"bad marker", admin, "TrentService.ListKeys", json11, `{"Marker":"zz"}`, nil, 400, "InvalidMarkerException"},
		{"bad limit", admin, "TrentService.ListKeys", json11, `{"Limit":0}`, nil, 400, "ValidationException"},
		{"ciphertext not ours", admin, "TrentService.Decrypt", json11, `{"CiphertextBlob":"` + base64.StdEncoding.EncodeToString([]byte("not a ciphertext of this KMS, long enough")) + `"}`, nil, 400, "InvalidCiphertextException"},
		{"too large", admin, "TrentService.ListKeys", json11, `{"Marker":"` + strings.Repeat("x", 300<<10) + `"}`, nil, 413, "RequestEntityTooLargeException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := e.post(t, tc.ak, tc.target, tc.ctype, tc.body, tc.mod)
			if status != tc.status || m["__type"] != tc.typ || m["message"] == "" {
				t.Fatalf("got %d %v, want %d %s", status, m, tc.status, tc.typ)
			}
		})
	}
	// Allowed: timestamps are epoch seconds, blobs base64.
	status, m := e.post(t, admin, "TrentService.CreateKey", json11, `{"Description":"wire"}`, nil)
	md, _ := m["KeyMetadata"].(map[string]any)
	if cd, ok := md["CreationDate"].(float64); status != 200 || !ok || time.Since(time.Unix(int64(cd), 0)) > time.Minute {
		t.Fatalf("%d %v", status, m)
	}
	status, m = e.post(t, admin, "TrentService.GenerateRandom", json11, `{"NumberOfBytes":12}`, nil)
	if b, err := base64.StdEncoding.DecodeString(fmt.Sprint(m["Plaintext"])); status != 200 || err != nil || len(b) != 12 {
		t.Fatalf("%d %v", status, m)
	}
	// Health check.
	resp, err := http.Get(e.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestAudit: every call, allowed, denied or unauthenticated, is one
// CloudTrail-shaped line, without plaintext or ciphertext.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	api := e.sdk(admin)
	id := aws.ToString(must[*sdk.CreateKeyOutput](t)(api.CreateKey(ctx, &sdk.CreateKeyInput{Description: aws.String("audited")})).KeyMetadata.KeyId)
	ec := map[string]string{"s3seal:bucket": "photos"}
	dk := must[*sdk.GenerateDataKeyOutput](t)(api.GenerateDataKey(ctx, &sdk.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}))
	secret := []byte("the secret plaintext")
	enc := must[*sdk.EncryptOutput](t)(api.Encrypt(ctx, &sdk.EncryptInput{KeyId: aws.String(id), Plaintext: secret, EncryptionContext: ec}))
	must[*sdk.DecryptOutput](t)(api.Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	_, err := e.sdk(eve).Decrypt(ctx, &sdk.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	wantCode(t, err, kms.CodeAccessDenied)
	e.post(t, "", "TrentService.ListKeys", "application/x-amz-json-1.1", "{}", nil)

	log := e.audit.String()
	for _, b := range [][]byte{dk.Plaintext, dk.CiphertextBlob, secret, enc.CiphertextBlob} {
		for _, form := range []string{string(b), base64.StdEncoding.EncodeToString(b), hex.EncodeToString(b)} {
			if strings.Contains(log, form) {
				t.Fatal("the audit log holds plaintext or ciphertext")
			}
		}
	}
	var evs []kms.AuditEvent
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var ev kms.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	var names []string
	for _, ev := range evs {
		names = append(names, ev.EventName)
	}
	if strings.Join(names, ",") != "CreateKey,GenerateDataKey,Encrypt,Decrypt,Decrypt,ListKeys" {
		t.Fatalf("events %v", names)
	}
	arn := "arn:aws:kms:local:000000000000:key/" + id
	ck, gdk, denied, anon := evs[0], evs[1], evs[4], evs[5]
	if ck.ResponseElements == nil || ck.ResponseElements.KeyID != id || ck.RequestParameters.Description != "audited" || ck.ReadOnly {
		t.Fatalf("CreateKey %+v", ck)
	}
	if gdk.UserIdentity.Type != "IAMUser" || gdk.UserIdentity.ARN != "arn:aws:iam::000000000000:user/"+admin || gdk.UserIdentity.AccessKeyID != admin ||
		gdk.RequestParameters.KeyID != id || gdk.RequestParameters.KeySpec != "AES_256" || gdk.RequestParameters.EncryptionContext["s3seal:bucket"] != "photos" ||
		len(gdk.Resources) != 1 || gdk.Resources[0].ARN != arn || gdk.ErrorCode != "" || gdk.EventSource != "kms.amazonaws.com" ||
		gdk.SourceIPAddress != "127.0.0.1" || gdk.RequestID == "" || gdk.EventID == "" || gdk.RecipientAccountID != "000000000000" {
		t.Fatalf("GenerateDataKey %+v", gdk)
	}
	if denied.ErrorCode != kms.CodeAccessDenied || denied.UserIdentity.AccessKeyID != eve || len(denied.Resources) != 1 {
		t.Fatalf("denied %+v", denied)
	}
	if anon.ErrorCode != "MissingAuthenticationTokenException" || anon.UserIdentity.Type != "Unknown" {
		t.Fatalf("unauthenticated %+v", anon)
	}
	if !bytes.Contains([]byte(log), []byte(`"eventName":"ListKeys"`)) {
		t.Fatal("no ListKeys")
	}
}
