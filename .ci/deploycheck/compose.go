package deploycheck

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// StopMargin is how much longer than shutdown_timeout plus drain_delay a
// service's stop_grace_period must be: after the last in-flight request,
// ppredeem still flushes and closes its store before it exits, and Docker
// sends SIGKILL the moment the grace period ends.
const StopMargin = 5 * time.Second

// dockerStopGrace is the grace period Docker gives without
// stop_grace_period (docker stop's default timeout).
const dockerStopGrace = 10 * time.Second

// Compose is a loaded docker-compose.yml.
type Compose struct {
	File    string
	raw     []byte
	project *types.Project
}

// LoadCompose loads raw, the compose file named file, with compose-go as
// `docker compose` does: every profile enabled, relative paths resolved
// against workingDir, no variables from this process's environment.
func LoadCompose(ctx context.Context, file string, raw []byte, workingDir string) (*Compose, error) {
	project, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  workingDir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(workingDir, file), Content: raw}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("ppredeem", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		return nil, err
	}
	return &Compose{File: file, raw: raw, project: project}, nil
}

// service is one service that runs the ppredeem image, as the checks see it.
type service struct {
	name    string
	cfg     types.ServiceConfig
	args    []string          // the command, the image's CMD when not overridden
	env     map[string]string // the image's ENV overlaid with the service's
	command string            // "serve", "gateway", "migrate", ...
}

// setting returns a setting as the command sees it: its flag in the
// command line, else its environment variable, else def.
func (s service) setting(flag, env, def string) (value string, fromFlag bool) {
	for i, a := range s.args {
		if a == flag && i+1 < len(s.args) {
			return s.args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	if v, ok := s.env[env]; ok {
		return v, false
	}
	return def, false
}

func (c *Compose) ppredeemServices(repo Repo, im Image) []service {
	var out []service
	for _, name := range slices.Sorted(maps.Keys(c.project.Services)) {
		cfg := c.project.Services[name]
		ours := cfg.Build != nil && filepath.Clean(cfg.Build.Context) == repo.Root
		if !ours && !strings.HasPrefix(cfg.Image, "ppredeem") {
			continue
		}
		s := service{name: name, cfg: cfg, args: cfg.Command, env: map[string]string{}}
		if len(s.args) == 0 {
			s.args = im.Cmd
		}
		if len(s.args) > 0 {
			s.command = s.args[0]
		}
		for k, v := range im.Env {
			s.env[k] = v
		}
		for k, v := range cfg.Environment {
			if v != nil {
				s.env[k] = *v
			}
		}
		out = append(out, s)
	}
	return out
}

var testKeyComment = regexp.MustCompile(`(?im)^\s*#.*public test key`)

// Check applies the compose rules (see the package doc) given the image
// the Dockerfile builds and the defaults of the example config file.
func (c *Compose) Check(repo Repo, im Image, defaults Defaults) []Problem {
	ps := problems{file: c.File}
	testKey, err := os.ReadFile(repo.Path("cmd/ppredeem/testdata/test-key.pem"))
	if err != nil {
		ps.add("test-key", "%v", err)
	}
	uid := im.UID()
	if uid < 0 {
		ps.add("keys", "the image's USER %q is not numeric: the file cannot tell operators whom to chown their key to", im.User)
	} else if !bytes.Contains(c.raw, []byte(fmt.Sprintf("chown %d", uid))) {
		ps.add("keys", "the file does not tell operators to chown their own key (written 0600) to the image's uid %d", uid)
	}

	embedded := 0
	for _, s := range c.ppredeemServices(repo, im) {
		switch s.command {
		case "serve":
			checkStopGrace(&ps, s, defaults)
			c.checkServe(&ps, repo, s, defaults, testKey, &embedded)
			listen, fromFlag := s.setting("--listen", "PPREDEEM_LISTEN", defaults.Listen)
			admin, _ := s.setting("--admin-listen", "PPREDEEM_ADMIN_LISTEN", "")
			c.checkListener(&ps, s, listen, admin, !fromFlag)
		case "gateway":
			// `ppredeem gateway` listens on --listen, else PPREDEEM_GATEWAY_LISTEN,
			// else 127.0.0.1:8081, and serves metrics on --admin-listen, else
			// PPREDEEM_GATEWAY_ADMIN_LISTEN (its own settings, not serve's); it
			// drains on SIGTERM with the same shutdown_timeout and drain_delay.
			checkStopGrace(&ps, s, defaults)
			listen, _ := s.setting("--listen", "PPREDEEM_GATEWAY_LISTEN", "127.0.0.1:8081")
			admin, _ := s.setting("--admin-listen", "PPREDEEM_GATEWAY_ADMIN_LISTEN", "")
			c.checkListener(&ps, s, listen, admin, false)
		}
	}
	if embedded == 0 {
		ps.add("embedded-volume", "no service runs the embedded store (a `serve` without PPREDEEM_DATABASE_URL, with its data on a named volume)")
	}
	return ps.list
}

// checkStopGrace checks that Docker lets a service drain: its
// stop_grace_period exceeds shutdown_timeout plus drain_delay by StopMargin.
func checkStopGrace(ps *problems, s service, defaults Defaults) {
	duration := func(flag, env string, def time.Duration) time.Duration {
		v, _ := s.setting(flag, env, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			ps.add("stop-grace", "service %s: %s=%q is not a duration", s.name, env, v)
		}
		return d
	}
	shutdown := duration("--shutdown-timeout", "PPREDEEM_SHUTDOWN_TIMEOUT", defaults.ShutdownTimeout)
	drain := duration("--drain-delay", "PPREDEEM_DRAIN_DELAY", defaults.DrainDelay)
	grace, graceFrom := dockerStopGrace, "Docker's default"
	if s.cfg.StopGracePeriod != nil {
		grace, graceFrom = time.Duration(*s.cfg.StopGracePeriod), "stop_grace_period"
	}
	if need := shutdown + drain + StopMargin; grace < need {
		ps.add("stop-grace", "service %s: %s is %s, but shutdown_timeout %s + drain_delay %s + %s margin is %s: Docker would SIGKILL it mid-drain",
			s.name, graceFrom, grace, shutdown, drain, StopMargin, need)
	}
}

func (c *Compose) checkServe(ps *problems, repo Repo, s service, defaults Defaults, testKey []byte, embedded *int) {
	keys, _ := s.setting("--keys", "PPREDEEM_KEYS", "")
	if strings.TrimSpace(keys) == "" {
		ps.add("keys", "service %s: no PPREDEEM_KEYS", s.name)
	}
	for _, key := range strings.Split(keys, ",") {
		if key = strings.TrimSpace(key); key != "" {
			c.checkKey(ps, repo, s, key, testKey)
		}
	}

	if dsn, _ := s.setting("--database-url", "PPREDEEM_DATABASE_URL", ""); dsn != "" {
		return
	}
	*embedded++
	dir, _ := s.setting("--data-dir", "PPREDEEM_DATA_DIR", "./data")
	var mount *types.ServiceVolumeConfig
	for i, v := range s.cfg.Volumes {
		if path.Clean(v.Target) == path.Clean(dir) {
			mount = &s.cfg.Volumes[i]
		}
	}
	switch {
	case mount == nil:
		ps.add("embedded-volume", "service %s keeps the embedded store in %s but mounts no named volume there: its spent tokens would go with the container", s.name, dir)
	case mount.Type != types.VolumeTypeVolume:
		ps.add("embedded-volume", "service %s keeps the embedded store in %s, a %s mount: use a named volume", s.name, dir, mount.Type)
	case c.project.Volumes[mount.Source].Name == "":
		ps.add("embedded-volume", "service %s keeps the embedded store in %s on an undeclared volume %q: declare it under volumes:", s.name, dir, mount.Source)
	}
}

// checkKey checks that key, a path in the container, is mounted read-only
// from a file the container's user can read, and that the public test key
// is flagged as such.
func (c *Compose) checkKey(ps *problems, repo Repo, s service, key string, testKey []byte) {
	var source string
	for _, sec := range s.cfg.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		if target == key {
			source = c.project.Secrets[sec.Source].File
			if source == "" {
				ps.add("keys", "service %s: the secret %s holding %s is not a file", s.name, sec.Source, key)
				return
			}
		}
	}
	for _, v := range s.cfg.Volumes {
		if v.Target == key {
			if v.Type != types.VolumeTypeBind {
				ps.add("keys", "service %s: %s comes from a %s mount, not from a file of the host", s.name, key, v.Type)
				return
			}
			if !v.ReadOnly {
				ps.add("keys", "service %s: the key %s is mounted read-write", s.name, key)
			}
			source = v.Source
		}
	}
	if source == "" {
		ps.add("keys", "service %s: PPREDEEM_KEYS names %s, but no secret or bind mount provides it", s.name, key)
		return
	}
	data, err := os.ReadFile(source)
	if err != nil {
		ps.add("keys", "service %s: the key %s: %v", s.name, key, err)
		return
	}
	if rel, err := filepath.Rel(repo.Root, source); err == nil && !strings.HasPrefix(rel, "..") {
		// A file of the repository is mounted as it is checked out: the
		// container's user is not its owner.
		if info, err := os.Stat(source); err == nil && info.Mode().Perm()&0o004 == 0 {
			ps.add("keys", "service %s: %s is mode %v: the container's user cannot read it", s.name, rel, info.Mode().Perm())
		}
	}
	if len(testKey) == 0 || !bytes.Equal(bytes.TrimSpace(data), bytes.TrimSpace(testKey)) {
		return
	}
	if !strings.Contains(key, "PUBLIC-TEST-KEY") {
		ps.add("test-key", "service %s serves the public test key as %s: name it so (PUBLIC-TEST-KEY) where PPREDEEM_KEYS and the logs show it", s.name, key)
	}
	if !testKeyComment.Match(c.raw) {
		ps.add("test-key", "service %s serves the public test key, and no comment in the file says so (\"public test key\")", s.name)
	}
}

// checkListener checks a server's healthcheck and published ports against
// the addresses it listens on (admin: its admin listener, or ""). followsSetting:
// the image's HEALTHCHECK, which probes serve's listen setting, finds this
// address.
func (c *Compose) checkListener(ps *problems, s service, listen, admin string, followsSetting bool) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		ps.add("healthcheck", "service %s listens on %q, not host:port", s.name, listen)
		return
	}
	if hc := s.cfg.HealthCheck; hc == nil || len(hc.Test) == 0 {
		if !followsSetting {
			ps.add("healthcheck", "service %s listens on %s but inherits the image's HEALTHCHECK, which probes serve's listen setting: override it with --url", s.name, listen)
		}
	} else if msg := healthcheckProblem(hc.Test, port, followsSetting, true); msg != "" {
		ps.add("healthcheck", "service %s: healthcheck %v: %s", s.name, []string(hc.Test), msg)
	}

	_, adminPort, _ := net.SplitHostPort(admin)
	for _, p := range s.cfg.Ports {
		target := strconv.FormatUint(uint64(p.Target), 10)
		switch target {
		case port:
		case adminPort:
			if ip := net.ParseIP(p.HostIP); ip == nil || !ip.IsLoopback() {
				ps.add("ports", "service %s publishes the admin listener (port %s: /metrics, /debug/pprof) beyond loopback", s.name, target)
			}
		default:
			ps.add("ports", "service %s publishes container port %s, where nothing listens (listen %s, admin %q)", s.name, target, listen, admin)
		}
	}
}

// parseProbeURL parses a healthcheck URL and fills in the port.
func parseProbeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an absolute http(s) URL", raw)
	}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}
