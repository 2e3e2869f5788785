

BoutputJ	Á·=/<u;÷2j·á½ª¸T=d8