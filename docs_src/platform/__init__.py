"""Examples of the platform's side: consuming what runbus asks it to do."""
