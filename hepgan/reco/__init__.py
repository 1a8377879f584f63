"""The surrogate's reconstruction: geometry, helix, seeding, features, road fit, engine, file driver."""
