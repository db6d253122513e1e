package classify

// Scorers returns the names of the configured scorers.
func (c *Classifier) Scorers() []string {
	names := make([]string, len(c.scorers))
	for i, s := range c.scorers {
		names[i] = s.Name()
	}
	return names
}
