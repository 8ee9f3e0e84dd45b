package localstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/dynamolocal"
)

// Preflight lists, in words a new user can act on, everything that would
// make the local stack fail to start: a port that is taken (or configured
// twice), and a missing Java (DynamoDB Local), Node.js/npm (the Step
// Functions service and the fetch of DynamoDB Local) or Go (the sample
// runtime is built at start). Tools are looked up on env's PATH (and
// JAVA_HOME). Nothing is started.
func Preflight(o RunOptions, env func(string) string) []string {
	var problems []string
	problems = append(problems, checkTools(env)...)
	problems = append(problems, checkPortsFree(o)...)
	return problems
}

// The install hints (what to install, not only what is missing).
const (
	javaInstall = "Install a Java 17 (or newer) runtime — Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`, macOS: `brew install openjdk@17` — and put `java` on PATH or set JAVA_HOME"
	nodeInstall = "Install Node.js with npm — Debian/Ubuntu: `apt-get install nodejs npm`, macOS: `brew install node`, or any Node.js installer; npm itself then fetches the Node 22 the Step Functions engine runs on"
	goInstall   = "Install Go 1.26 (the sample pipeline runtime is built with `go build` when the stack starts)"
)

func checkTools(env func(string) string) []string {
	var problems []string
	java, err := findJava(env)
	switch {
	case err != nil:
		problems = append(problems, "Java is missing (no `java` on PATH and no usable JAVA_HOME): DynamoDB Local runs on Java. "+javaInstall+".")
	default:
		if major, err := javaMajor(java); err != nil {
			problems = append(problems, fmt.Sprintf("Java at %s does not run (%v). %s.", java, err, javaInstall))
		} else if major < dynamolocal.MinJavaVersion {
			problems = append(problems, fmt.Sprintf("Java at %s is version %d; DynamoDB Local needs %d or newer. %s.", java, major, dynamolocal.MinJavaVersion, javaInstall))
		}
	}
	if _, err := lookPath("node", env); err != nil {
		problems = append(problems, "Node.js is missing (no `node` on PATH): the local Step Functions service and DynamoDB Local are installed with npm. "+nodeInstall+".")
	} else if _, err := lookPath("npm", env); err != nil {
		problems = append(problems, "npm is missing (no `npm` on PATH, though `node` is there): the local Step Functions service and DynamoDB Local are installed with npm. "+nodeInstall+".")
	}
	if _, err := lookPath("go", env); err != nil {
		problems = append(problems, "Go is missing (no `go` on PATH). "+goInstall+".")
	}
	return problems
}

// lookPath finds an executable on env's PATH (exec.LookPath reads the
// process's PATH; Run's caller decides the environment).
func lookPath(name string, env func(string) string) (string, error) {
	for _, dir := range filepath.SplitList(env("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// findJava resolves java as DynamoDB Local's launcher does: $JAVA_HOME/bin/java
// when it exists, else java on PATH.
func findJava(env func(string) string) (string, error) {
	if home := env("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return lookPath("java", env)
}

var javaVersionRE = regexp.MustCompile(`(?m)^\S+ version "([^"]+)"`)

// javaMajor runs `java -version`: `openjdk version "17.0.15"` → 17,
// `java version "1.8.0_381"` → 8.
func javaMajor(java string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
	if err != nil {
		return 0, err
	}
	return parseJavaMajor(string(out))
}

func parseJavaMajor(out string) (int, error) {
	m := javaVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, errors.New("no version in its `-version` output")
	}
	parts := strings.FieldsFunc(m[1], func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	if len(parts) > 1 && parts[0] == "1" {
		parts = parts[1:]
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("unparsable version %q", m[1])
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, fmt.Errorf("unparsable version %q", m[1])
	}
	return n, nil
}

// checkPortsFree binds every configured port once (and releases it). The
// Step Functions service, the Lambda endpoint and the API listen on
// 127.0.0.1; DynamoDB Local binds every interface, so its port must be free
// on all of them.
func checkPortsFree(o RunOptions) []string {
	apiHost, apiPortS, _ := net.SplitHostPort(o.APIAddr)
	apiPort, _ := strconv.Atoi(apiPortS)
	type part struct {
		what, flag, env, addr string
		port                  int
		example               string
	}
	parts := []part{
		{"the API", "--api-addr", EnvAPIAddr, o.APIAddr, apiPort, "--api-addr " + net.JoinHostPort(apiHost, strconv.Itoa(apiPort+1))},
		{"DynamoDB Local", "--dynamodb-port", EnvDynamoPort, ":" + strconv.Itoa(o.DynamoPort), o.DynamoPort, "--dynamodb-port " + strconv.Itoa(o.DynamoPort+1)},
		{"the Step Functions service", "--sfn-port", EnvSFNPort, "127.0.0.1:" + strconv.Itoa(o.SFNPort), o.SFNPort, "--sfn-port " + strconv.Itoa(o.SFNPort+1)},
		{"the Lambda endpoint", "--lambda-port", EnvLambdaPort, "127.0.0.1:" + strconv.Itoa(o.LambdaPort), o.LambdaPort, "--lambda-port " + strconv.Itoa(o.LambdaPort+1)},
	}
	var problems []string
	byPort := map[int]string{}
	for _, p := range parts {
		if other, dup := byPort[p.port]; dup {
			problems = append(problems, fmt.Sprintf("port %d is configured for both %s and %s: give each part its own port (%s / %s)", p.port, other, p.what, p.flag, p.env))
			continue
		}
		byPort[p.port] = p.what
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			why := "cannot be bound"
			if errors.Is(err, syscall.EADDRINUSE) {
				why = "is already in use"
			}
			problems = append(problems, fmt.Sprintf("port %d for %s %s (%v): stop what listens there (an earlier `make run`? `ss -ltnp 'sport = :%d'` shows it) or choose another port with %s or %s, e.g. %s",
				p.port, p.what, why, err, p.port, p.flag, p.env, p.example))
			continue
		}
		_ = ln.Close()
	}
	return problems
}
