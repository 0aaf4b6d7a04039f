// Package slate makes what a channel sends while its publisher is gone: a
// still picture ("Séance interrompue — reprise dans quelques instants" /
// "Session interrupted — resuming shortly", or the channel's own image)
// and silence, matched to the live stream so that destinations see one
// continuous broadcast. The relay plays it (relay.SlateSource).
package slate

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// Source is one channel's slate: the built-in picture, or an image
// rendered by a Renderer at the live stream's size and rate. It implements
// relay.SlateSource; its methods never block.
type Source struct {
	log   zerolog.Logger
	r     *Renderer
	image imageStamp // zero: built-in only
}

// imageStamp identifies an image file's content for the render cache: a
// file replaced at the same path (then a config reload) is rendered again.
type imageStamp struct {
	path    string
	size    int64
	modTime int64
}

// NewSource returns the slate source of a channel. With image empty it is
// the built-in slate. Otherwise image must be a readable PNG or JPEG file
// and r must have found ffmpeg; the image is rendered by r when the
// channel goes live, and the built-in slate is used until it is ready or
// if rendering fails.
func NewSource(image string, r *Renderer, log zerolog.Logger) (*Source, error) {
	if _, err := builtins(); err != nil {
		return nil, err
	}
	s := &Source{log: log.With().Str("component", "slate").Logger(), r: r}
	if image == "" {
		return s, nil
	}
	if r == nil || r.ffmpeg == "" {
		return nil, fmt.Errorf("slate image %s: %w", image, ErrNoFFmpeg)
	}
	st, err := checkImage(image)
	if err != nil {
		return nil, err
	}
	s.image = st
	return s, nil
}

// checkImage opens the image and checks that it is a PNG or JPEG file.
func checkImage(image string) (imageStamp, error) {
	f, err := os.Open(image)
	if err != nil {
		return imageStamp{}, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return imageStamp{}, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	if !fi.Mode().IsRegular() {
		return imageStamp{}, fmt.Errorf("%w: %s is not a file", ErrBadImage, image)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(f, head); err != nil {
		return imageStamp{}, fmt.Errorf("%w: %s: not a PNG or JPEG file (%w)", ErrBadImage, image, err)
	}
	png := string(head) == "\x89PNG\r\n\x1a\n"
	jpeg := head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff
	if !png && !jpeg {
		return imageStamp{}, fmt.Errorf("%w: %s is not a PNG or JPEG file", ErrBadImage, image)
	}
	return imageStamp{path: image, size: fi.Size(), modTime: fi.ModTime().UnixNano()}, nil
}

// Prepare renders the channel's image for the live parameters in the
// background, if it has one and it is not rendered yet.
func (s *Source) Prepare(p relay.SlateParams) {
	if s.image.path != "" {
		s.r.request(s.renderKey(p))
	}
}

func (s *Source) renderKey(p relay.SlateParams) renderKey {
	w, h := p.Width, p.Height
	if w <= 0 || h <= 0 {
		w, h = defaultWidth, defaultHeight
	}
	return renderKey{image: s.image, width: w, height: h, fps: renderRate(p.FPS)}
}

// Slate returns the slate for a live stream with parameters p: the
// channel's rendered image if ready, else the nearest built-in slate; with
// silence in the live audio's configuration.
func (s *Source) Slate(p relay.SlateParams) *relay.Slate {
	var c *clip
	var name string
	if s.image.path != "" {
		key := s.renderKey(p)
		if c = s.r.lookup(key); c != nil {
			name = fmt.Sprintf("image %s %dx%d %g fps", s.image.path, c.width, c.height, c.fps)
		} else {
			s.log.Warn().Str("image", s.image.path).Int("width", key.width).Int("height", key.height).
				Float64("fps", key.fps).Msg("the slate image is not rendered for this stream (yet): sending the built-in slate")
			s.r.request(key)
		}
	}
	if c == nil {
		list, err := builtins()
		if err != nil {
			return nil
		}
		c = pick(list, p.Width, p.Height, p.FPS)
		name = fmt.Sprintf("built-in %dx%d %g fps", c.width, c.height, c.fps)
	}
	sl := &relay.Slate{
		SPS: c.sps, PPS: c.pps, Frames: c.frames,
		FrameDuration: c.frameDuration(), Name: name,
	}
	if p.Audio != nil {
		sil, err := Silence(p.Audio.Config)
		if err != nil {
			s.log.Warn().Err(err).Msg("the slate is sent without sound")
		} else {
			sl.Silence = sil
		}
	}
	return sl
}

// retryFailedAfter is how long a failed render is remembered before the
// next interruption or go-live tries again.
const retryFailedAfter = time.Minute
