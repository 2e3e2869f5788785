
BoutputJ(Á þ¿E‰?Hcš?É¿E?q?wH<¾o~`¿¢i¿ÉÅ|?¿M>