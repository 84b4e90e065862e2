package simulator

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is the API's error body, e.g. the 401 "Not logged in".
type apiError struct {
	Status    int     `json:"status"`
	ErrorCode *int    `json:"error_code"`
	Subcode   *string `json:"subcode"`
	Message   string  `json:"message"`
	Details   any     `json:"details"`
}

func writeAPIError(w http.ResponseWriter, status int, message string, details any) {
	writeJSON(w, status, apiError{Status: status, Message: message, Details: details})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeAPIError(w, http.StatusNotFound, "Not Found", nil)
}

func (s *Simulator) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/me", s.endpoint(EndpointMe, s.authed(s.handleMe)))
	mux.HandleFunc("GET /api/user/{id}/overview", s.endpoint(EndpointOverview, s.authed(s.handleOverview)))
	mux.HandleFunc("GET /api/user/{id}/workouts", s.endpoint(EndpointWorkouts, s.authed(s.handleWorkouts)))
	mux.HandleFunc("GET /api/workout/{id}/performance_graph", s.endpoint(EndpointPerformanceGraph, s.authed(s.handlePerformanceGraph)))
	mux.HandleFunc("GET /api/user/{id}/settings", s.endpoint(EndpointSettings, s.authed(s.handleSettings)))
	mux.HandleFunc("GET /api/user/{id}/challenges/current", s.endpoint(EndpointChallenges, s.authed(s.handleChallenges)))
	mux.HandleFunc("GET /api/user/{id}/challenge/{challenge}", s.endpoint(EndpointChallenge, s.authed(s.handleChallenge)))
	mux.HandleFunc("GET /api/user/{id}/challenges/{challenge}", s.endpoint(EndpointChallenge, s.authed(s.handleChallenge)))
	mux.HandleFunc("POST /auth/login", s.endpoint(EndpointLegacyLogin, handleLegacyLogin))
	mux.HandleFunc("/", notFound)
	return mux
}

// authed checks what every /api/ request needs: the Peloton-Platform header
// and a live Bearer token. It hands the token's user to h.
func (s *Simulator) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Peloton-Platform") != "web" {
			writeAPIError(w, http.StatusForbidden, "Forbidden", "missing or unknown Peloton-Platform header")
			return
		}
		user, ok := s.bearerUser(r) // a token is only ever issued to a member
		if !ok {
			code := 3020
			writeJSON(w, http.StatusUnauthorized, apiError{Status: 401, ErrorCode: &code, Message: "Not logged in"})
			return
		}
		h(w, r, user)
	}
}

func handleLegacyLogin(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusForbidden, map[string]any{
		"status":  403,
		"message": "Access forbidden. Endpoint no longer accepting requests.",
	})
}

// profile is /api/me.
type profile struct {
	ID                             string         `json:"id"`
	Username                       string         `json:"username"`
	Email                          string         `json:"email"`
	Name                           string         `json:"name"`
	CreatedAt                      int64          `json:"created_at"`
	LastWorkoutAt                  int64          `json:"last_workout_at"`
	TotalWorkouts                  int            `json:"total_workouts"`
	TotalPedalingMetricWorkouts    int            `json:"total_pedaling_metric_workouts"`
	TotalNonPedalingMetricWorkouts int            `json:"total_non_pedaling_metric_workouts"`
	TotalFollowers                 int            `json:"total_followers"`
	TotalFollowing                 int            `json:"total_following"`
	CyclingFTP                     int            `json:"cycling_ftp"`
	CyclingWorkoutFTP              int            `json:"cycling_workout_ftp"`
	EstimatedCyclingFTP            int            `json:"estimated_cycling_ftp"`
	CyclingFTPSource               *string        `json:"cycling_ftp_source"`
	CustomizedMaxHeartRate         int            `json:"customized_max_heart_rate"`
	Weight                         float64        `json:"weight"`
	Height                         float64        `json:"height"`
	Timezone                       string         `json:"timezone"`
	WorkoutCounts                  []WorkoutCount `json:"workout_counts"`
}

func (s *Simulator) handleMe(w http.ResponseWriter, _ *http.Request, user string) {
	s.mu.Lock()
	p := s.memberByID(user).profile()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, p)
}

func (m *member) profile() profile {
	var done []*Workout
	for i := range m.history {
		if m.history[i].Status == "COMPLETE" {
			done = append(done, &m.history[i])
		}
	}
	p := profile{
		ID:                     m.userID,
		Username:               m.username,
		Email:                  m.email,
		Name:                   m.name,
		CreatedAt:              m.createdAt,
		TotalWorkouts:          len(done),
		TotalFollowers:         87,
		TotalFollowing:         112,
		CustomizedMaxHeartRate: 0,
		Weight:                 165,
		Height:                 70,
		Timezone:               m.timezone,
		WorkoutCounts:          m.workoutCounts(done, false).Workouts,
	}
	if len(m.history) > 0 {
		p.LastWorkoutAt = m.history[0].StartTime
	}
	var best20 float64
	for _, w := range done {
		switch w.FitnessDiscipline {
		case "cycling", "bike_bootcamp":
			p.TotalPedalingMetricWorkouts++
			if classSeconds(w) == 20*60 {
				best20 = max(best20, w.TotalWork)
			}
		}
	}
	p.TotalNonPedalingMetricWorkouts = p.TotalWorkouts - p.TotalPedalingMetricWorkouts
	if best20 > 0 {
		// FTP is 95% of the best 20-minute average power.
		ftp := int(math.Round(0.95 * best20 / 1200))
		source := "ftp_workout_source"
		p.CyclingFTP, p.CyclingWorkoutFTP, p.EstimatedCyclingFTP = ftp, ftp, ftp-3
		p.CyclingFTPSource = &source
	}
	if m.manualFTP > 0 {
		// Set by hand in the member's settings (peloton-to-garmin's FtpSource ftp_manual_source).
		source := "ftp_manual_source"
		p.CyclingFTP, p.CyclingFTPSource = m.manualFTP, &source
	}
	return p
}

func (s *Simulator) handleOverview(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("id") != user {
		writeAPIError(w, http.StatusForbidden, "Forbidden", "not your user id")
		return
	}
	s.mu.Lock()
	m := s.memberByID(user)
	var raw []byte
	if m == s.primary() {
		raw = s.overviewJSON
	}
	var o Overview
	if raw == nil {
		o = s.overviewLocked(m)
	}
	s.mu.Unlock()
	if raw != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(raw)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// workoutsPage is the answer of /api/user/{id}/workouts.
type workoutsPage struct {
	Data                        []Workout      `json:"data"`
	Limit                       int            `json:"limit"`
	Page                        int            `json:"page"`
	Total                       int            `json:"total"`
	Count                       int            `json:"count"`
	PageCount                   int            `json:"page_count"`
	ShowPrevious                bool           `json:"show_previous"`
	ShowNext                    bool           `json:"show_next"`
	SortBy                      string         `json:"sort_by"`
	Next                        *nextCursor    `json:"next,omitempty"`
	Summary                     map[string]int `json:"summary"`
	AggregateStats              []any          `json:"aggregate_stats"`
	TotalHeartRateZoneDurations any            `json:"total_heart_rate_zone_durations"`
}

type nextCursor struct {
	WorkoutID string `json:"workout_id"`
	CreatedAt int64  `json:"created_at"`
}

const defaultPageLimit = 20

func (s *Simulator) handleWorkouts(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("id") != user {
		writeAPIError(w, http.StatusForbidden, "Forbidden", "not your user id")
		return
	}
	q := r.URL.Query()
	page, errPage := intParam(q.Get("page"), 0)
	limit, errLimit := intParam(q.Get("limit"), defaultPageLimit)
	sortBy := q.Get("sort_by")
	if sortBy == "" {
		sortBy = "-created"
	}
	joins := q.Get("joins")
	var problem string
	switch {
	case errPage != nil || page < 0:
		problem = "page must be a non-negative integer"
	case errLimit != nil || limit < 1 || limit > 100:
		problem = "limit must be between 1 and 100"
	case sortBy != "-created" && sortBy != "created":
		problem = "unknown sort_by"
	case joins != "" && joins != "ride" && joins != "ride,ride.instructor":
		problem = "unknown joins"
	}
	if problem != "" {
		writeAPIError(w, http.StatusBadRequest, "Request was invalid", problem)
		return
	}

	s.mu.Lock()
	m := s.memberByID(user)
	hist := m.history
	total := len(hist)
	resp := workoutsPage{
		Data:           []Workout{},
		Limit:          limit,
		Page:           page,
		Total:          total,
		PageCount:      (total + limit - 1) / limit,
		SortBy:         sortBy,
		Summary:        monthSummary(hist, m.loc),
		AggregateStats: []any{},
	}
	// Compare pages, not items, so a huge page number cannot overflow.
	if page < resp.PageCount {
		for i := page * limit; i < min(total, (page+1)*limit); i++ {
			item := hist[i]
			if sortBy == "created" {
				item = hist[total-1-i]
			}
			switch {
			case joins == "":
				item.Ride = nil
			case strings.Contains(joins, "ride.instructor") && item.Ride != nil && !item.Is3PFitFeedWorkout:
				r := *item.Ride
				r.Instructor = m.instructorFor(&r)
				item.Ride = &r
			}
			resp.Data = append(resp.Data, item)
		}
	}
	s.mu.Unlock()

	resp.Count = len(resp.Data)
	resp.ShowPrevious = page > 0
	resp.ShowNext = page+1 < resp.PageCount
	if resp.ShowNext {
		last := resp.Data[len(resp.Data)-1]
		resp.Next = &nextCursor{WorkoutID: last.ID, CreatedAt: last.CreatedAt}
	}
	writeJSON(w, http.StatusOK, resp)
}

// intParam parses an optional integer query parameter.
func intParam(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// monthSummary counts workouts per local "YYYY-MM", as the summary field does.
func monthSummary(hist []Workout, loc *time.Location) map[string]int {
	sum := map[string]int{}
	for i := range hist {
		sum[time.Unix(hist[i].CreatedAt, 0).In(loc).Format("2006-01")]++
	}
	return sum
}
