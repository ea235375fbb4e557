"""The settings table: every knob parsed, validated and documented once."""
