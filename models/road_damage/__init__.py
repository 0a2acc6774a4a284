"""road_damage: road-surface damage type, MLIT level and location from crews' photos."""
