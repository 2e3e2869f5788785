
BoutputJ(Oó²>­Á?ÌÓ#>LHw¿_ö>ÐR¿UÐé¿@.+¿D ¿MSÅ¿