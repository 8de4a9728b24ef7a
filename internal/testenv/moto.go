package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Moto is a running moto_server: a real AWS API (KMS among others) on
// loopback. It verifies encryption context and keeps regions apart, but does
// not enforce key state.
type Moto struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are arbitrary (moto accepts any); use them so
	// that SDKs find credentials without looking at the host's config.
	AccessKey, SecretKey string

	proc *process
	log  *logBuffer
	once sync.Once
}

// StartMoto starts moto_server for the test and stops it when the test ends.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := LaunchMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// LaunchMoto starts moto_server, for use from TestMain; the caller must call
// Stop.
func LaunchMoto() (*Moto, error) {
	return launchMoto(false)
}

// StartMotoMRK is StartMoto with moto's multi-Region keys made usable:
// moto (5.2.1, the version tests run) writes the key id into its
// ciphertext blobs truncated to 36 bytes, which cuts the 40-byte id of an
// mrk- key, so it cannot decrypt anything wrapped under a multi-Region key,
// in any region. This starts the same moto_server with one function
// replaced (motoMRKFix): when its decrypt finds no key for a blob, the key
// is looked up again by the truncated id among the mrk- keys of the
// region. Nothing else changes (blobs keep their bytes, other keys behave
// as before), and a replica decrypts only in a region it was replicated
// to, as in AWS.
func StartMotoMRK(t testing.TB) *Moto {
	t.Helper()
	m, err := launchMoto(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// motoMRKFix runs moto_server with its KMS decrypt completed for mrk- key
// ids (see StartMotoMRK); sys.argv carries moto_server's own arguments.
const motoMRKFix = `
import moto.kms.models as m, moto.kms.utils as u
orig = u.decrypt
def decrypt(master_keys, ciphertext_blob, encryption_context):
    try:
        return orig(master_keys=master_keys, ciphertext_blob=ciphertext_blob, encryption_context=encryption_context)
    except u.AccessDeniedException:
        cut = u._deserialize_ciphertext_blob(ciphertext_blob=ciphertext_blob).key_id
        full = [k for k in master_keys if k.startswith("mrk-") and k[:u.KEY_ID_LEN] == cut]
        if len(full) != 1:
            raise
        pt, _ = orig(master_keys={cut: master_keys[full[0]]}, ciphertext_blob=ciphertext_blob, encryption_context=encryption_context)
        return pt, full[0]
m.decrypt = decrypt
from moto.server import main
main()
`

func launchMoto(mrkFix bool) (*Moto, error) {
	bin, err := MotoBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		m, err := launchMotoOnce(bin, mrkFix)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

func launchMotoOnce(bin string, mrkFix bool) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &Moto{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "testing",
		SecretKey: "testing",
		log:       &logBuffer{limit: logLimit},
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if mrkFix {
		// moto_server is a console script of the python3 moto is
		// installed for; run its main from that interpreter.
		cmd = exec.Command("python3", "-c", motoMRKFix, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	}
	cmd.Env = hermeticEnv()
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	m.proc, err = startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("testenv: start moto_server: %w", err)
	}
	// Any HTTP answer means the server is up.
	err = waitHTTP(m.proc, m.Endpoint+"/moto-api/", 60*time.Second, func(*http.Response) bool { return true })
	if err != nil {
		m.proc.stop(5 * time.Second)
		log := m.log.String()
		if isBindError(log) {
			return nil, fmt.Errorf("testenv: moto_server: %w: %v\n%s", errPortTaken, err, log)
		}
		return nil, fmt.Errorf("testenv: moto_server: %v\noutput:\n%s", err, log)
	}
	return m, nil
}

// Stop stops the server. It is safe to call more than once.
func (m *Moto) Stop() {
	m.once.Do(func() {
		m.Thaw() // a frozen server would only die by SIGKILL
		m.proc.stop(5 * time.Second)
	})
}

// Log returns what the server printed.
func (m *Moto) Log() string { return m.log.String() }

// Freeze stops the server with SIGSTOP: connections stay open and calls
// hang unanswered, as with a KMS that stopped responding. Thaw resumes
// it with its state (moto keeps keys in memory, so a restart would lose
// them).
func (m *Moto) Freeze() { _ = syscall.Kill(-m.proc.cmd.Process.Pid, syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (m *Moto) Thaw() { _ = syscall.Kill(-m.proc.cmd.Process.Pid, syscall.SIGCONT) }

var (
	motoOnce sync.Once
	motoBin  string
	motoErr  error
)

// MotoBinary returns the path of moto_server. If it is not on $PATH it tries
// `pip install 'moto[server]'` once (under a file lock) and fails with a
// clear error if that does not give one.
func MotoBinary() (string, error) {
	motoOnce.Do(func() {
		if p, err := exec.LookPath("moto_server"); err == nil {
			motoBin = p
			return
		}
		motoErr = withFileLock("moto-install.lock", func() error {
			if p, err := exec.LookPath("moto_server"); err == nil {
				motoBin = p
				return nil
			}
			out, err := exec.Command("python3", "-m", "pip", "install", "moto[server]").CombinedOutput()
			if p, lerr := exec.LookPath("moto_server"); lerr == nil {
				motoBin = p
				return nil
			}
			return fmt.Errorf("testenv: moto_server is not on PATH and `pip install 'moto[server]'` did not provide it "+
				"(install it, e.g. with .ci/run or apt-get install python3-moto): %v\n%s", err, out)
		})
	})
	return motoBin, motoErr
}
