package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// lifecycle connects a serving command to the process's signals and, in
// tests, to the test. Every field may be nil.
type lifecycle struct {
	// hup: each value reloads (SIGHUP); commands without a reload ignore it.
	hup <-chan os.Signal
	// stop: each value is one SIGINT or SIGTERM. The first value, or ctx
	// ending, begins the graceful shutdown; the second value stops at
	// once, during the drain delay or while in-flight requests finish.
	stop <-chan os.Signal
	// listening is told the addresses the server listens on (tests use
	// port 0); admin is nil without an admin listener.
	listening func(main, admin net.Addr)
	// reloaded is told the outcome of each reload: nil once the new state
	// is in force, the error when the previous state stays.
	reloaded func(error)
	// draining is told that shutdown has begun: /readyz fails from now on.
	draining func()
	// signalled is told, after each value received on stop, how many
	// have come so far.
	signalled func(n int)
	// now is the clock (nil: time.Now); tests move it.
	now func() time.Time
}

// clock returns lc.now, or time.Now.
func (lc lifecycle) clock() func() time.Time {
	if lc.now != nil {
		return lc.now
	}
	return time.Now
}

// processLifecycle is the lifecycle of a real process: SIGHUP, and SIGINT
// and SIGTERM (main cancels the command's context at the first of those;
// stop sees that one too, and a second one). Call release when done.
func processLifecycle() (lc lifecycle, release func()) {
	hup, stop := make(chan os.Signal, 1), make(chan os.Signal, 2)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	return lifecycle{hup: hup, stop: stop}, func() {
		signal.Stop(hup)
		signal.Stop(stop)
	}
}

// errStoppedAtOnce is the answer to a second stop signal.
var errStoppedAtOnce = errors.New("stopped at once by a second signal: in-flight requests were cut off")

// listeners is a command's main listener and, when configured, its admin
// listener, each with the server that serves it.
type listeners struct {
	main, admin     *http.Server
	mainLn, adminLn net.Listener
}

// listen opens the main listener and, when adminAddr is not empty, the
// admin listener. Both are open before anything is served, so a taken
// port fails the command before it accepts a request.
func listen(main *http.Server, mainAddr string, admin *http.Server, adminAddr string) (*listeners, error) {
	ln, err := net.Listen("tcp", mainAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", mainAddr, err)
	}
	l := &listeners{main: main, mainLn: ln}
	if adminAddr != "" {
		aln, err := net.Listen("tcp", adminAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin listen %s: %w", adminAddr, err)
		}
		l.admin, l.adminLn = admin, aln
	}
	return l, nil
}

func (l *listeners) adminAddr() net.Addr {
	if l.adminLn == nil {
		return nil
	}
	return l.adminLn.Addr()
}

// shutdownPlan is how a command stops and what it does on SIGHUP.
type shutdownPlan struct {
	drainDelay, shutdownTimeout time.Duration
	// startDraining makes /readyz fail.
	startDraining func()
	// reload runs on each SIGHUP (nil: SIGHUP is ignored).
	reload func() error
}

// serve runs the listeners as one group until ctx is done or a stop signal
// comes, then shuts down gracefully: /readyz fails at once, the listeners
// keep serving for the drain delay, then the main listener stops accepting
// and in-flight requests get up to the shutdown timeout (the admin
// listener keeps serving metrics meanwhile). When one listener fails the
// other is shut down, and every return closes both.
func (l *listeners) serve(ctx context.Context, log *slog.Logger, lc lifecycle, plan shutdownPlan) error {
	servers := []*http.Server{l.main}
	lns := []net.Listener{l.mainLn}
	if l.admin != nil {
		servers = append(servers, l.admin)
		lns = append(lns, l.adminLn)
	}
	group, groupCtx := errgroup.WithContext(context.Background())
	for i, s := range servers {
		group.Go(func() error {
			if err := s.Serve(lns[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", lns[i].Addr(), err)
			}
			return nil
		})
	}
	// closeAll cuts every connection of both listeners and waits for
	// their goroutines: on every way out (after a completed Shutdown it
	// changes nothing), and at once when one listener failed.
	closeAll := func() error {
		for _, s := range servers {
			s.Close()
		}
		return group.Wait()
	}
	defer closeAll()
	if lc.listening != nil {
		lc.listening(l.mainLn.Addr(), l.adminAddr())
	}

	signals := 0 // values received on lc.stop
	for running := true; running; {
		select {
		case <-lc.hup:
			if plan.reload == nil {
				log.Info("SIGHUP ignored: this command has nothing to reload")
				continue
			}
			err := plan.reload()
			if lc.reloaded != nil {
				lc.reloaded(err)
			}
		case <-groupCtx.Done():
			return closeAll()
		case <-ctx.Done():
			running = false
		case <-lc.stop:
			signals++
			if lc.signalled != nil {
				lc.signalled(signals)
			}
			running = false
		}
	}
	// The second stop signal stops at once. When ctx ended first, the
	// signal that ended it (main cancels ctx on the first one) may still
	// be on its way to lc.stop: it counts as the first.
	stopAtOnce := make(chan struct{})
	go func() {
		for signals < 2 {
			select {
			case <-lc.stop:
				signals++
				if lc.signalled != nil {
					lc.signalled(signals)
				}
			case <-groupCtx.Done():
				return
			}
		}
		close(stopAtOnce)
	}()

	plan.startDraining()
	if lc.draining != nil {
		lc.draining()
	}
	if plan.drainDelay > 0 {
		// Load balancers see /readyz fail and stop sending; meanwhile
		// everything that still arrives is served.
		log.Info("shutting down: /readyz now fails; still serving", "drain_delay", plan.drainDelay)
		drained := time.NewTimer(plan.drainDelay)
		select {
		case <-drained.C:
		case <-stopAtOnce:
			log.Warn("shutting down at once: second signal during the drain delay")
			return errStoppedAtOnce
		case <-groupCtx.Done():
			return closeAll()
		}
	}
	log.Info("shutting down: draining in-flight requests", "timeout", plan.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), plan.shutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-stopAtOnce:
			cancel()
		case <-shutdownCtx.Done():
		}
	}()
	// The main listener first: the admin listener keeps serving metrics
	// while in-flight requests finish.
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		select {
		case <-stopAtOnce:
			log.Warn("shutting down at once: second signal while in-flight requests finished")
			return errStoppedAtOnce
		default:
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := group.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
