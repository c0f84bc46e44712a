"""Table and column comments (COMMENT ON) of the forecast tables, for analysts."""

FORECAST = (
    "Revenue forecast as of as_of_date, for every weekly as-of date (but those before which no deal had been "
    "won: nothing says when a deal closes), each made from what was known on it: "
    "booked revenue (won amounts by close date) per week, per month and for the rest of the quarter, per "
    "segment (total / region / manager / rep / division), from n_sims Monte-Carlo simulations "
    "of the open deals (calibrated win probability x close-date distribution), new pipeline (deals not "
    "yet created), and a shared period-level swing tuned on backtests. The first period of each type is "
    "partial: it starts the day after as_of_date.", {
        "period_type": "week, month, or quarter (the fiscal quarter of as_of_date + 1 day, from first_day to its end; settings.fiscal_year_start_month)",
        "period_start": "Monday of the week / first day of the month or quarter (the first period covers "
                        "first_day..last_day only)",
        "weighted_pipeline": "The weighted pipeline's call: sum of win probability x amount of the deals expected "
                             "to close in the period (overdue ones in the first)",
        "commit": "The commit category's call: amount of the open deals in Commit (rules.py, from the stage on "
                  "as_of_date) expected to close in the period; NULL when the source has no categories",
        "shock_tuned_for": "The shock tuning used: the latest chosen on backtest horizons over before as_of_date "
                           "(NULL: none yet, no swing)",
        "timing_cutoff": "Cutoff of the close-timing model (refit every few weeks; only snapshots before it)",
        "first_day": "First day the period covers (as_of_date + 1 for the first period)",
        "last_day": "Last day the period covers",
        "p10": "10th percentile of simulated booked revenue: 9 periods in 10 should book at least this",
        "p50": "Median simulated booked revenue",
        "p90": "90th percentile: 9 periods in 10 should book at most this",
        "mean": "Mean simulated booked revenue (expected value)",
        "sigma_horizon": "Size (log sd) of the shared swing over the whole horizon, tuned on backtests",
        "sigma_week": "Size (log sd) of the shared weekly swing, tuned on backtests",
        "win_model_version": "Where the win probabilities came from (scores.deal_scores model_version)",
    })

BACKTEST = (
    "Rolling-origin backtests: for each past Monday (as_of_date) the forecast made with only what was "
    "known then, and the revenue actually booked (actual). backtest_as_of is the run's data as-of date; "
    "covered = p10 <= actual <= p90. baseline_weighted_pipeline is sum(win probability x amount) placed "
    "on each deal's expected close date.", {
        "as_of_date": "The backtest origin: the forecast uses only data known on this date",
        "backtest_as_of": "As-of date of the data the backtest run had (partition)",
        # an audit: 37 of 494 weekly rows did not add up over a 7-day week from period_start
        "period_start": "Monday of the week / first day of the month or quarter; the first period of an origin "
                        "starts on the day after as_of_date (that day's bookings were known then)",
        "actual": "Revenue actually booked in the period (won amounts by close date), from the day after "
                  "as_of_date in an origin's first period",
        "covered": "p10 <= actual <= p90",
        "crps": "Continuous ranked probability score of the simulated distribution (currency; lower is better)",
        "baseline_weighted_pipeline": "Baseline point forecast: sum of p x amount by expected close date",
        "win_model_version": "Win model (or stage baseline) that was current on the origin",
    })

TUNING = (
    "Grid search of the shared shock on the backtests: P10-P90 coverage of the total, weekly and monthly, "
    "over the last 26 weeks of origins observed by tuned_for, for each (sigma_horizon, sigma_week); chosen = "
    "least sum of (coverage - 80 %)^2 over week and month.", {
        "coverage": "Weekly and monthly rows pooled", "coverage_week": "Weekly rows only",
        "coverage_month": "Monthly rows only"})

CONTRIBUTIONS = (
    "Open deals as of as_of_date, one row each, and how much each one adds to the forecast and to its spread: "
    "p_within_weeks[k] = P(won and closed within k weeks), k = 1 .. horizon_weeks; for the whole horizon "
    "p_in_horizon, expected_revenue = p_in_horizon x amount, sd_revenue = amount x sqrt(p (1 - p)) and "
    "variance_share = its share of the variance of the horizon total (deals are independent given the "
    "shared swing). A shorter horizon h: p_within_weeks[h] in place of p_in_horizon.", {
        "amount": "Amount the forecast books if the deal is won (its product's list price where the deal has none)",
        "horizon_weeks": "Weeks the forecast covered (the length of p_within_weeks)",
        "p_within_weeks": "List: element k (1-based) = P(the deal is won and closes within k weeks of as_of_date)",
        "p_in_horizon": "P(the deal is won and closes within horizon_weeks) = p_within_weeks[horizon_weeks]",
        "sd_revenue": "Standard deviation the deal adds: amount * sqrt(p_in_horizon * (1 - p_in_horizon))",
        "variance_share": "Share of the horizon total's deal-level variance that comes from this deal",
    })
