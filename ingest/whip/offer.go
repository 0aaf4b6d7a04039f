package whip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"
)

// h264Profiles are the profile_idc and constraint bytes of profile-level-id
// (RFC 6184 8.1) seance accepts: what browsers and OBS offer. The level
// is not negotiated (RFC 6184 8.2.2).
var h264Profiles = []string{
	"42e0", // Constrained Baseline (every browser)
	"4200", // Baseline
	"4d00", // Main
	"6400", // High (OBS/x264, Chrome with a hardware encoder)
	"640c", // Constrained High (Safari)
}

// offerInfo is what seance needs to know from an offer before answering it.
type offerInfo struct {
	audio bool // an audio section offers Opus
}

// checkOffer parses the offer and checks that it sends H.264 video in
// packetization mode 1. Errors wrap ErrBadOffer; a missing H.264 wraps
// ErrNoH264 and says what the offer has instead.
func checkOffer(offer string) (offerInfo, error) {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}
	sd, err := desc.Unmarshal()
	if err != nil {
		return offerInfo{}, fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	var info offerInfo
	var others []string
	h264, receiveOnly := false, false
	for _, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if md.MediaName.Port.Value == 0 || (kind != "video" && kind != "audio") {
			continue
		}
		codecs := map[string]string{} // payload type → encoding name
		fmtps := map[string]string{}
		sends := true
		for _, a := range md.Attributes {
			pt, val, _ := strings.Cut(a.Value, " ")
			switch a.Key {
			case "rtpmap":
				name, _, _ := strings.Cut(val, "/")
				codecs[pt] = name
			case "fmtp":
				fmtps[pt] = val
			case "recvonly", "inactive":
				sends = false // RFC 8866 6.7: the default is sendrecv
			}
		}
		if !sends {
			if kind == "video" {
				receiveOnly = true
			}
			continue
		}
		for pt, name := range codecs {
			switch {
			case kind == "audio" && strings.EqualFold(name, "opus"):
				info.audio = true
			case kind == "video" && strings.EqualFold(name, "H264"):
				if usableH264(fmtps[pt]) {
					h264 = true
				} else if !slices.Contains(others, "H.264 in another packetization mode or profile") {
					others = append(others, "H.264 in another packetization mode or profile")
				}
			case kind == "video" && !isHelperCodec(name) && !slices.Contains(others, name):
				others = append(others, name)
			}
		}
	}
	if !h264 {
		if len(others) == 0 && receiveOnly {
			return info, fmt.Errorf("%w: it only receives video (to watch, use /whep/{channel})", ErrNoH264)
		}
		if len(others) == 0 {
			return info, fmt.Errorf("%w: it has no video (set the encoder to H.264)", ErrNoH264)
		}
		slices.Sort(others)
		return info, fmt.Errorf("%w: it offers %s (set the encoder to H.264)", ErrNoH264, strings.Join(others, ", "))
	}
	return info, nil
}

// usableH264 says whether an H.264 format's parameters are packetization
// mode 1 (RFC 6184 6.3: non-interleaved, FU-A and STAP-A) with a profile
// seance negotiates.
func usableH264(fmtp string) bool {
	mode1, profile := false, false
	for p := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "packetization-mode":
			mode1 = v == "1"
		case "profile-level-id":
			profile = len(v) == 6 && slices.Contains(h264Profiles, strings.ToLower(v[:4]))
		}
	}
	return mode1 && profile
}

// isHelperCodec tells retransmission and error-correction formats, which
// are not video codecs, from real ones in error messages.
func isHelperCodec(name string) bool {
	switch strings.ToLower(name) {
	case "rtx", "red", "ulpfec", "flexfec-03":
		return true
	}
	return false
}
