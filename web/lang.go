package web

import (
	"strconv"
	"strings"
)

// texts are the words of the public pages in one language. The player's
// live strings (states, viewer count) are in static/player.js, which reads
// the page's lang attribute.
type texts struct {
	Lang       string // BCP 47 tag for <html lang>
	Site       string // the site's name, in the header and page titles
	SkipLink   string
	IndexIntro string
	NoChannels string
	Live       string
	Offline    string
	Watch      string // link text, followed by the channel title
	Player     string // aria-label of the player region
	Video      string // aria-label of the video
	Loading    string
	Unmute     string
	Mute       string
	Volume     string
	Fullscreen string
	Captions   string
	// The quality menu: its label and choices.
	Quality      string
	QualityAuto  string
	QualityHigh  string
	QualityLow   string
	QualityAudio string
	NoScript     string
	Privacy      string
	NotFound     string
	NotFoundMsg  string
	BackToIndex  string
}

var french = texts{
	Lang:         "fr",
	Site:         "Séances publiques en direct",
	SkipLink:     "Aller au contenu",
	IndexIntro:   "Suivez en direct les séances publiques des conseils, sans inscription, sans publicité et sans traceur.",
	NoChannels:   "Aucune séance n'est configurée.",
	Live:         "En direct",
	Offline:      "Hors ligne",
	Watch:        "Regarder",
	Player:       "Lecteur vidéo",
	Video:        "Vidéo de la séance",
	Loading:      "Connexion…",
	Unmute:       "Activer le son",
	Mute:         "Couper le son",
	Volume:       "Volume",
	Fullscreen:   "Plein écran",
	Captions:     "Sous-titres",
	Quality:      "Qualité",
	QualityAuto:  "Auto",
	QualityHigh:  "Haute",
	QualityLow:   "Basse",
	QualityAudio: "Son seul",
	NoScript:     "Activez JavaScript pour regarder la séance en direct.",
	Privacy:      "Cette page ne dépose aucun cookie et ne charge rien depuis un autre site : votre visionnage n'est pas suivi.",
	NotFound:     "Séance introuvable",
	NotFoundMsg:  "Aucune séance ne porte ce nom. Vérifiez l'adresse, ou choisissez dans la liste des séances.",
	BackToIndex:  "Voir toutes les séances",
}

var english = texts{
	Lang:         "en",
	Site:         "Live public sessions",
	SkipLink:     "Skip to content",
	IndexIntro:   "Watch council sessions live: no sign-up, no ads, no tracking.",
	NoChannels:   "No session is configured.",
	Live:         "Live",
	Offline:      "Offline",
	Watch:        "Watch",
	Player:       "Video player",
	Video:        "Video of the session",
	Loading:      "Connecting…",
	Unmute:       "Turn on sound",
	Mute:         "Mute",
	Volume:       "Volume",
	Fullscreen:   "Full screen",
	Captions:     "Captions",
	Quality:      "Quality",
	QualityAuto:  "Auto",
	QualityHigh:  "High",
	QualityLow:   "Low",
	QualityAudio: "Sound only",
	NoScript:     "Turn on JavaScript to watch the session live.",
	Privacy:      "This page sets no cookie and loads nothing from another site: your viewing is not tracked.",
	NotFound:     "Session not found",
	NotFoundMsg:  "No session has this name. Check the address, or pick one from the list of sessions.",
	BackToIndex:  "See all sessions",
}

// negotiate picks the pages' language from an Accept-Language header
// (RFC 9110 12.5.4): English when the browser ranks it above French,
// French otherwise (the default, including when neither is listed).
func negotiate(acceptLanguage string) *texts {
	// For each language: its best q and where that q was listed, which
	// breaks ties ("en, fr" is English).
	type rank struct {
		q   float64
		pos int
	}
	fr, en := rank{q: -1}, rank{q: -1}
	pos := 0
	for part := range strings.SplitSeq(acceptLanguage, ",") {
		pos++
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		r := &fr
		switch primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-"); primary {
		case "fr":
		case "en":
			r = &en
		default:
			continue
		}
		if q > r.q {
			r.q, r.pos = q, pos
		}
	}
	if en.q > 0 && (en.q > fr.q || en.q == fr.q && en.pos < fr.pos) {
		return &english
	}
	return &french
}
