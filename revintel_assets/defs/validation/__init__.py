"""Model validation shared by every model of revintel: metrics, gains, calibration and the
validation.* tables they are written to."""
