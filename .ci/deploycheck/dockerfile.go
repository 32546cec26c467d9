package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/version"
	"net"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	File   string // name in messages, relative to the repository
	data   []byte
	stages []instructions.Stage
}

// ParseDockerfile parses data with BuildKit's parser, as `docker build`
// does.
func ParseDockerfile(file string, data []byte) (*Dockerfile, error) {
	ast, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", file)
	}
	return &Dockerfile{File: file, data: data, stages: stages}, nil
}

// offlineImages stands in for a registry when the linter asks for a base
// image's configuration: an empty image of this machine's platform. No
// lint rule needs more from it than its platform.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config, err := json.Marshal(ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(ref)}},
		Config:   ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	return ref, "", config, err
}

// Lint runs BuildKit's Dockerfile checks on every stage: what `docker build
// --check` reports, with the rule configuration of the file's own
// `# check=` directive.
func (d *Dockerfile) Lint(ctx context.Context) []Problem {
	ps := problems{file: d.File}
	_, err := dockerfile2llb.Dockerfile2LLB(ctx, d.data, dockerfile2llb.ConvertOpt{
		MetaResolver: offlineImages{},
		AllStages:    true,
		Warn: func(rule, _, url, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			ps.add("buildkit/"+rule, "line %d: %s (%s)", line, msg, url)
		},
	})
	if err != nil {
		ps.add("buildkit", "%v", err)
	}
	return ps.list
}

// Image is what the final stage sets up, as written (ARGs not expanded).
type Image struct {
	Base        string
	Env         map[string]string
	Args        []string // ARGs declared in the final stage
	Labels      map[string]string
	User        string
	Volumes     []string
	Exposed     []string // ports, without /tcp
	Healthcheck []string // HEALTHCHECK's test, e.g. [CMD /usr/local/bin/ppredeem healthcheck]
	Cmd         []string
}

// UID is the numeric uid of User, or -1.
func (im Image) UID() int {
	uid, _, _ := strings.Cut(im.User, ":")
	n, err := strconv.Atoi(uid)
	if err != nil {
		return -1
	}
	return n
}

// FinalImage describes the last stage, the image `docker build` produces.
func (d *Dockerfile) FinalImage() Image {
	st := d.stages[len(d.stages)-1]
	im := Image{Base: st.BaseName, Env: map[string]string{}, Labels: map[string]string{}}
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				im.Env[kv.Key] = kv.Value
			}
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				im.Args = append(im.Args, a.Key)
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				im.Labels[kv.Key] = kv.Value
			}
		case *instructions.UserCommand:
			im.User = c.User
		case *instructions.VolumeCommand:
			im.Volumes = append(im.Volumes, c.Volumes...)
		case *instructions.ExposeCommand:
			for _, p := range c.Ports {
				im.Exposed = append(im.Exposed, strings.TrimSuffix(p, "/tcp"))
			}
		case *instructions.HealthCheckCommand:
			im.Healthcheck = c.Health.Test
		case *instructions.CmdCommand:
			im.Cmd = c.CmdLine
		}
	}
	return im
}

// release is a distribution release a base image is built on.
type release struct {
	end    time.Time // end of security support; zero: none announced
	source string
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// endOfSupport lists the releases base images may be built on. A release
// not listed fails the check: add it with its published end of support.
// Sources: https://alpinelinux.org/releases/ and
// https://wiki.debian.org/DebianReleases (regular security support; Debian
// LTS is a separate effort that distroless does not build on).
var endOfSupport = map[string]release{
	"debian11":   {day("2024-08-14"), "wiki.debian.org/DebianReleases"},
	"debian12":   {day("2026-06-10"), "wiki.debian.org/DebianReleases"},
	"debian13":   {time.Time{}, "wiki.debian.org/DebianReleases (released 2025-08-09; end not announced)"},
	"alpine3.19": {day("2025-11-01"), "alpinelinux.org/releases"},
	"alpine3.20": {day("2026-04-01"), "alpinelinux.org/releases"},
	"alpine3.21": {day("2026-11-01"), "alpinelinux.org/releases"},
	"alpine3.22": {day("2027-05-01"), "alpinelinux.org/releases"},
	"alpine3.23": {day("2027-11-01"), "alpinelinux.org/releases"},
}

var debianCodenames = map[string]string{"bullseye": "debian11", "bookworm": "debian12", "trixie": "debian13"}

var (
	debianSuffix  = regexp.MustCompile(`-(debian\d+)$`)
	alpineVersion = regexp.MustCompile(`^alpine(\d+\.\d+)`)
	numericMinor  = regexp.MustCompile(`^(\d+\.\d+)`)
	leadingNumber = regexp.MustCompile(`^(\d+)`)
)

// releaseOf names the distribution release of an image reference, or "".
func releaseOf(ref reference.Named, tag string) string {
	name := path.Base(reference.Path(ref))
	if m := debianSuffix.FindStringSubmatch(name); m != nil { // gcr.io/distroless/static-debian13
		return m[1]
	}
	switch name {
	case "alpine":
		if m := numericMinor.FindStringSubmatch(tag); m != nil {
			return "alpine" + m[1]
		}
		return ""
	case "debian":
		if r, ok := debianCodenames[strings.SplitN(tag, "-", 2)[0]]; ok {
			return r
		}
		if m := leadingNumber.FindStringSubmatch(tag); m != nil {
			return "debian" + m[1]
		}
		return ""
	}
	// Variant suffixes of official images: golang:1.26.8-trixie,
	// golang:1.26.8-alpine3.23.
	for _, part := range strings.Split(tag, "-")[1:] {
		if r, ok := debianCodenames[part]; ok {
			return r
		}
		if m := alpineVersion.FindStringSubmatch(part); m != nil {
			return "alpine" + m[1]
		}
	}
	return ""
}

var (
	goBuildLine   = regexp.MustCompile(`\bgo\s+build\b`)
	versionLDFlag = regexp.MustCompile(`-X\s*'?main\.version=\$\{?VERSION\}?`)
	numericUser   = regexp.MustCompile(`^(\d+):(\d+)$`)
)

// Check applies this project's rules (see the package doc); now is the
// day base images must still be supported on.
func (d *Dockerfile) Check(repo Repo, now time.Time) []Problem {
	ps := problems{file: d.File}
	goLine, err := repo.GoDirective()
	if err != nil {
		ps.add("builder-go", "%v", err)
	}
	stageNames := map[string]bool{}
	for _, st := range d.stages {
		d.checkBase(&ps, st, stageNames, goLine, now)
		if st.Name != "" {
			stageNames[strings.ToLower(st.Name)] = true
		}
	}
	d.checkGoBuild(&ps)

	im := d.FinalImage()
	fromArg := map[string]string{"version": "VERSION", "revision": "REVISION"}
	for _, key := range []string{"title", "description", "source", "version", "revision"} {
		name := "org.opencontainers.image." + key
		value, arg := strings.TrimSpace(im.Labels[name]), fromArg[key]
		switch {
		case value == "":
			ps.add("labels", "no LABEL %s", name)
		case arg == "":
		case !strings.Contains(value, "$"+arg) && !strings.Contains(value, "${"+arg+"}"):
			ps.add("labels", "LABEL %s is %q, not the build argument %s", name, value, arg)
		case !slices.Contains(im.Args, arg):
			ps.add("labels", "LABEL %s uses $%s but the final stage declares no ARG %s (it would be empty)", name, arg, arg)
		}
	}

	dataDir := im.Env["PPREDEEM_DATA_DIR"]
	switch {
	case !strings.HasPrefix(dataDir, "/"):
		ps.add("volume", "ENV PPREDEEM_DATA_DIR is %q: set it to an absolute path and make that a VOLUME", dataDir)
	case !slices.Contains(im.Volumes, dataDir):
		ps.add("volume", "the embedded store's directory %s is not a VOLUME (VOLUME %v)", dataDir, im.Volumes)
	}

	if m := numericUser.FindStringSubmatch(im.User); m == nil {
		ps.add("user", "USER is %q: use a numeric uid:gid, so hosts can chown key files to it", im.User)
	} else if m[1] == "0" {
		ps.add("user", "USER %s is root", im.User)
	}

	listen := im.Env["PPREDEEM_LISTEN"]
	if host, port, err := net.SplitHostPort(listen); err != nil {
		ps.add("listen", "ENV PPREDEEM_LISTEN is %q, not host:port (the default 127.0.0.1 is unreachable from outside a container)", listen)
	} else {
		if host != "0.0.0.0" && host != "::" && host != "" {
			ps.add("listen", "PPREDEEM_LISTEN host %q is not every interface: unreachable from outside the container", host)
		}
		if !slices.Contains(im.Exposed, port) {
			ps.add("listen", "the listen port %s is not EXPOSEd (EXPOSE %v)", port, im.Exposed)
		}
	}

	if msg := healthcheckProblem(im.Healthcheck, "", true, false); msg != "" {
		ps.add("healthcheck", "HEALTHCHECK %v: %s", im.Healthcheck, msg)
	}
	return ps.list
}

func (d *Dockerfile) checkBase(ps *problems, st instructions.Stage, stageNames map[string]bool, goLine string, now time.Time) {
	base := st.BaseName
	if base == "scratch" || stageNames[strings.ToLower(base)] {
		return
	}
	if strings.Contains(base, "$") {
		ps.add("base-pinned", "FROM %s: name the base image literally, so that its pin can be checked", base)
		return
	}
	ref, err := reference.ParseNormalizedNamed(base)
	if err != nil {
		ps.add("base-pinned", "FROM %s: %v", base, err)
		return
	}
	tagged, hasTag := ref.(reference.Tagged)
	_, hasDigest := ref.(reference.Digested)
	if !hasTag || !hasDigest {
		ps.add("base-pinned", "FROM %s: pin it as name:tag@sha256:digest (the tag says what it is, the digest fixes its bytes)", base)
	}
	tag := ""
	if hasTag {
		tag = tagged.Tag()
	}
	rel := releaseOf(ref, tag)
	if r, ok := endOfSupport[rel]; !ok {
		ps.add("base-supported", "FROM %s: cannot tell its distribution release (%q) or its end of support: name the release in the tag and list it in endOfSupport", base, rel)
	} else if !r.end.IsZero() && !now.Before(r.end) {
		ps.add("base-supported", "FROM %s: %s left security support on %s (%s)", base, rel, r.end.Format(time.DateOnly), r.source)
	}
	if reference.FamiliarName(ref) == "golang" && goLine != "" {
		goVersion, _, _ := strings.Cut(tag, "-")
		switch {
		case strings.Count(goVersion, ".") != 2 || !version.IsValid("go"+goVersion):
			ps.add("builder-go", "FROM %s: the tag must name a Go release (1.26.8-trixie), to compare it with go.mod's go %s", base, goLine)
		case version.Compare("go"+goVersion, "go"+goLine) < 0:
			ps.add("builder-go", "FROM %s: Go %s is older than go.mod's go %s, and the image does not fetch toolchains (GOTOOLCHAIN=local)", base, goVersion, goLine)
		}
	}
}

func (d *Dockerfile) checkGoBuild(ps *problems) {
	for _, st := range d.stages {
		var args []string
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.ArgCommand:
				for _, a := range c.Args {
					args = append(args, a.Key)
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				if !goBuildLine.MatchString(line) {
					continue
				}
				for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
					if !strings.Contains(line, want) {
						ps.add("go-build", "the go build in stage %q lacks %s", st.Name, want)
					}
				}
				if !versionLDFlag.MatchString(line) {
					ps.add("go-build", "the go build in stage %q does not bake the version in (-ldflags \"-X main.version=${VERSION}\")", st.Name)
				} else if !slices.Contains(args, "VERSION") {
					ps.add("go-build", "stage %q uses ${VERSION} before declaring ARG VERSION", st.Name)
				}
				return
			}
		}
	}
	ps.add("go-build", "no stage runs go build")
}

// healthcheckProblem says what is wrong with a healthcheck test (Docker's
// form: [CMD arg...], [CMD-SHELL line] or [NONE]) for an image without a
// shell, or "" when it runs `ppredeem healthcheck` against port.
// followsSetting: without --url the probe finds the port (it comes from
// serve's listen setting). allowURL: --url may name the port.
func healthcheckProblem(test []string, port string, followsSetting, allowURL bool) string {
	if len(test) == 0 {
		return "there is none"
	}
	switch test[0] {
	case "CMD":
	case "NONE":
		return "it is disabled"
	default:
		return "not the exec form [\"CMD\", ...]: the image has no shell"
	}
	if len(test) < 3 || path.Base(test[1]) != "ppredeem" || test[2] != "healthcheck" {
		return "it must run `ppredeem healthcheck` (the image has no wget or curl)"
	}
	var probeURL string
	for flags := test[3:]; len(flags) > 0; flags = flags[1:] {
		name, value, hasValue := strings.Cut(flags[0], "=")
		if !hasValue && len(flags) > 1 {
			flags = flags[1:]
			value = flags[0]
		}
		switch name {
		case "--timeout":
		case "--url":
			probeURL = value
		default:
			return fmt.Sprintf("unexpected argument %s: the probe's address comes from --url or the listen setting", name)
		}
	}
	switch {
	case probeURL == "" && followsSetting:
		return ""
	case probeURL == "":
		return fmt.Sprintf("the service listens on port %s, which the probe's listen setting does not give: add --url with that port", port)
	case !allowURL:
		return fmt.Sprintf("--url %s hard-codes an address: leave it out so the probe follows the listen setting", probeURL)
	}
	u, err := parseProbeURL(probeURL)
	if err != nil {
		return err.Error()
	}
	if u.Port() != port {
		return fmt.Sprintf("--url %s probes port %s but the service listens on %s", probeURL, u.Port(), port)
	}
	return ""
}
