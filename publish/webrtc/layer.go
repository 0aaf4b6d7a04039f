package webrtc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/seance-relay/seance/relay"
)

// The WHEP core extensions (draft-ietf-wish-whep, "Protocol extensions"):
// Video Layer Selection, and the Server Sent Events its "layers" event
// needs. seance's layers are the channel's renditions: "full" (the
// publisher's stream) and each reduced rendition by name. A switch keeps
// the negotiated track: same SSRC and payload type, sequence numbers and
// timestamps continuing, at the target's next keyframe.
const (
	relLayer = "urn:ietf:params:whep:ext:core:layer"
	relSSE   = "urn:ietf:params:whep:ext:core:server-sent-events"
	// maxLayerBody bounds a layer selection request.
	maxLayerBody = 4 << 10
	// layersEvery is how often an event stream checks for changed layers.
	layersEvery = time.Second
	// keepAliveEvery is how often an idle event stream sends a comment, so
	// that proxies keep it open.
	keepAliveEvery = 15 * time.Second
)

var (
	errUnknownLayer = errors.New("no such layer")
	errLayerDown    = errors.New("layer not available right now")
	errBadMediaID   = errors.New("mediaId is not the video's")
)

// extensionLinks are the Link headers of a session's 201 answer when its
// channel has renditions.
func extensionLinks(location string) []string {
	return []string{
		"<" + location + `/layer>; rel="` + relLayer + `"`,
		"<" + location + `/sse>; rel="` + relSSE + `"; events="layers"`,
	}
}

// layerRequest is the body of a layer selection (draft-ietf-wish-whep,
// "Video Layer Selection extension"); an empty object returns to the
// default (full).
type layerRequest struct {
	MediaID    string `json:"mediaId"`
	EncodingID string `json:"encodingId"`
}

// parseLayerRequest reads a layer selection body. Unknown fields (the
// spatial and temporal layer ids seance's renditions do not have) are
// ignored.
func parseLayerRequest(b []byte) (layerRequest, error) {
	var req layerRequest
	if len(strings.TrimSpace(string(b))) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return layerRequest{}, errors.New("the body must be a JSON object like {\"mediaId\":\"0\",\"encodingId\":\"basse\"}")
	}
	return req, nil
}

// layerInfo is one layer of a "layers" event.
type layerInfo struct {
	EncodingID   string `json:"encodingId,omitempty"`
	ID           string `json:"id,omitempty"`
	SimulcastIdx int    `json:"simulcastIdx"`
	Bitrate      int64  `json:"bitrate,omitempty"`
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
}

// mediaLayers is a "layers" event's entry for the video m-line. Selected
// (seance's addition) names the layer the viewer asked for, Playing the
// one it receives now (they differ during a switch, or while a rendition
// restarts and the viewer gets the full stream meanwhile).
type mediaLayers struct {
	Active   []layerInfo `json:"active"`
	Inactive []layerInfo `json:"inactive"`
	Layers   []layerInfo `json:"layers"`
	Selected string      `json:"selected"`
	Playing  string      `json:"playing"`
}

// layers describes the session's layers now.
func (s *session) layers() mediaLayers {
	out := mediaLayers{Active: []layerInfo{}, Inactive: []layerInfo{}, Layers: []layerInfo{}}
	add := func(name string, idx int, ch *relay.Channel, bitrate int64, height int) {
		h := ch.Health()
		info := layerInfo{ID: name, SimulcastIdx: idx, Bitrate: bitrate, Height: height}
		if h.Video != nil && h.Video.Height > 0 {
			info.Width, info.Height = h.Video.Width, h.Video.Height
		}
		if bitrate == 0 {
			// The full rendition's rate is the publisher's, measured,
			// rounded so that its jitter does not make an event.
			info.Bitrate = int64(h.Bitrate/500_000+0.5) * 500_000
		}
		if h.State == relay.StateIdle {
			out.Inactive = append(out.Inactive, layerInfo{ID: name, SimulcastIdx: idx, Width: info.Width, Height: info.Height})
			return
		}
		out.Active = append(out.Active, info)
		l := info
		l.ID, l.EncodingID = "", name
		out.Layers = append(out.Layers, l)
	}
	add(relay.QualityFull, 0, s.ch, 0, 0)
	for i, r := range s.ch.Renditions() {
		add(r.Name, i+1, r.Channel, r.VideoBitrate, r.Height)
	}
	out.Selected, out.Playing = s.layerWant.Load().(string), s.layerPlaying.Load().(string)
	return out
}

// selectLayer asks the writer to switch to a layer ("" or "full": the
// full rendition).
func (s *session) selectLayer(req layerRequest) error {
	if req.MediaID != "" && req.MediaID != s.videoMid() {
		return errBadMediaID
	}
	name := req.EncodingID
	if name == "" {
		name = relay.QualityFull
	}
	if name != relay.QualityFull {
		r := s.ch.Rendition(name)
		if r == nil {
			return errUnknownLayer
		}
		if st, _ := r.Channel.State(); st == relay.StateIdle {
			return errLayerDown
		}
	}
	s.layerWant.Store(name)
	// Latest wins: an older request still queued is replaced.
	for {
		select {
		case s.layerReq <- name:
			return nil
		default:
		}
		select {
		case <-s.layerReq:
		default:
		}
	}
}

// videoMid is the video transceiver's mid in the negotiated SDP.
func (s *session) videoMid() string {
	for _, t := range s.pc.GetTransceivers() {
		if t.Sender() == s.vsender {
			return t.Mid()
		}
	}
	return "0"
}

// layerHandlers serves a session's layer selection and event stream.
func (s *Server) layerPost(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil || len(sess.ch.Renditions()) == 0 {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLayerBody))
	if err != nil {
		HTTPError(w, http.StatusRequestEntityTooLarge, "the layer selection is too large")
		return
	}
	req, err := parseLayerRequest(body)
	if err != nil {
		HTTPError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch err := sess.selectLayer(req); {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, errLayerDown):
		w.Header().Set("Retry-After", "2")
		HTTPError(w, http.StatusConflict, "this quality is not available right now: try again shortly")
	case errors.Is(err, errBadMediaID):
		HTTPError(w, http.StatusBadRequest, "mediaId must be the video's ("+sess.videoMid()+")")
	default:
		HTTPError(w, http.StatusBadRequest, "no such layer: use full or one of the layers the layers event lists")
	}
}

// ssePost creates the session's event stream (draft-ietf-wish-whep,
// "Server Sent Events extension"): 201 with its Location, which is the
// same URL, read with GET. The body, a list of event names, is not
// needed: "layers" is the only event.
func (s *Server) ssePost(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	if _, err := s.session(r.PathValue("channel"), r.PathValue("id")); err != nil {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxLayerBody))
	w.Header().Set("Location", r.URL.Path)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
}

// sseGet streams "layers" events while the session lasts: one at once,
// then one each time the layers change. A session has at most one event
// stream: a new one ends the previous.
func (s *Server) sseGet(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		HTTPError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	mine := make(chan struct{})
	if prev := sess.sse.Swap(&mine); prev != nil {
		close(*prev)
	}
	defer sess.sse.CompareAndSwap(&mine, nil)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(layersEvery)
	defer t.Stop()
	var last string
	lastSent := time.Now()
	for {
		l := sess.layers()
		b, _ := json.Marshal(map[string]mediaLayers{sess.videoMid(): l})
		if string(b) != last {
			last = string(b)
			// One data line (draft-ietf-wish-whep: the data of an
			// event is encoded on a single line).
			if _, err := io.WriteString(w, "event: layers\ndata: "+last+"\n\n"); err != nil {
				return
			}
			fl.Flush()
			lastSent = time.Now()
		} else if time.Since(lastSent) >= keepAliveEvery {
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
			lastSent = time.Now()
		}
		select {
		case <-t.C:
		case <-mine:
			return
		case <-sess.ctx.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// sseDelete ends the session's event stream.
func (s *Server) sseDelete(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	if prev := sess.sse.Swap(nil); prev != nil {
		close(*prev)
	}
	w.WriteHeader(http.StatusOK)
}
