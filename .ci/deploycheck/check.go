package deploycheck

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// Check runs every check on the repository's deployment files; now is the
// day base images must still be supported on.
func Check(ctx context.Context, repo Repo, now time.Time) ([]Problem, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(repo.Path(name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}
	dockerfile, err := read("Dockerfile")
	if err != nil {
		return nil, err
	}
	compose, err := read("docker-compose.yml")
	if err != nil {
		return nil, err
	}
	dockerignore, err := read(".dockerignore")
	if err != nil {
		return nil, err
	}
	return CheckFiles(ctx, repo, Files{Dockerfile: dockerfile, Compose: compose, Dockerignore: dockerignore}, now)
}

// Files are the deployment files' contents; nil: the file does not exist.
type Files struct {
	Dockerfile   []byte
	Compose      []byte
	Dockerignore []byte
}

// CheckFiles runs every check on files as if they were the repository's.
// An error means a file could not be read as its kind at all.
func CheckFiles(ctx context.Context, repo Repo, files Files, now time.Time) ([]Problem, error) {
	if files.Dockerfile == nil || files.Compose == nil {
		return nil, errors.New("no Dockerfile or no docker-compose.yml")
	}
	df, err := ParseDockerfile("Dockerfile", files.Dockerfile)
	if err != nil {
		return nil, err
	}
	defaults, err := repo.ExampleDefaults()
	if err != nil {
		return nil, err
	}
	compose, err := LoadCompose(ctx, "docker-compose.yml", files.Compose, repo.Root)
	if err != nil {
		return []Problem{{File: "docker-compose.yml", Rule: "compose", Message: err.Error()}}, nil
	}
	var all []Problem
	all = append(all, df.Lint(ctx)...)
	all = append(all, df.Check(repo, now)...)
	all = append(all, CheckDockerignore(ctx, repo, files.Dockerignore)...)
	all = append(all, compose.Check(repo, df.FinalImage(), defaults)...)
	return all, nil
}
