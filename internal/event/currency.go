package event

// currencies is the set of active ISO 4217 alphabetic codes (List One as
// published by the ISO 4217 maintenance agency, SIX, effective 1 January
// 2026), including fund, precious-metal, testing and "no currency" codes.
//
// Withdrawn codes are deliberately absent, among them ANG (replaced by XCG,
// 2025), BGN (Bulgaria adopted the euro, 2026), CUC, HRK (Croatia adopted the
// euro, 2023), SLL (redenominated to SLE) and ZWL (replaced by ZWG, 2024).
var currencies = map[string]struct{}{
	"AED": {}, // UAE Dirham
	"AFN": {}, // Afghani
	"ALL": {}, // Lek
	"AMD": {}, // Armenian Dram
	"AOA": {}, // Kwanza
	"ARS": {}, // Argentine Peso
	"AUD": {}, // Australian Dollar
	"AWG": {}, // Aruban Florin
	"AZN": {}, // Azerbaijan Manat

	"BAM": {}, // Convertible Mark
	"BBD": {}, // Barbados Dollar
	"BDT": {}, // Taka
	"BHD": {}, // Bahraini Dinar
	"BIF": {}, // Burundi Franc
	"BMD": {}, // Bermudian Dollar
	"BND": {}, // Brunei Dollar
	"BOB": {}, // Boliviano
	"BOV": {}, // Mvdol
	"BRL": {}, // Brazilian Real
	"BSD": {}, // Bahamian Dollar
	"BTN": {}, // Ngultrum
	"BWP": {}, // Pula
	"BYN": {}, // Belarusian Ruble
	"BZD": {}, // Belize Dollar

	"CAD": {}, // Canadian Dollar
	"CDF": {}, // Congolese Franc
	"CHE": {}, // WIR Euro
	"CHF": {}, // Swiss Franc
	"CHW": {}, // WIR Franc
	"CLF": {}, // Unidad de Fomento
	"CLP": {}, // Chilean Peso
	"CNY": {}, // Yuan Renminbi
	"COP": {}, // Colombian Peso
	"COU": {}, // Unidad de Valor Real
	"CRC": {}, // Costa Rican Colon
	"CUP": {}, // Cuban Peso
	"CVE": {}, // Cabo Verde Escudo
	"CZK": {}, // Czech Koruna

	"DJF": {}, // Djibouti Franc
	"DKK": {}, // Danish Krone
	"DOP": {}, // Dominican Peso
	"DZD": {}, // Algerian Dinar

	"EGP": {}, // Egyptian Pound
	"ERN": {}, // Nakfa
	"ETB": {}, // Ethiopian Birr
	"EUR": {}, // Euro

	"FJD": {}, // Fiji Dollar
	"FKP": {}, // Falkland Islands Pound

	"GBP": {}, // Pound Sterling
	"GEL": {}, // Lari
	"GHS": {}, // Ghana Cedi
	"GIP": {}, // Gibraltar Pound
	"GMD": {}, // Dalasi
	"GNF": {}, // Guinean Franc
	"GTQ": {}, // Quetzal
	"GYD": {}, // Guyana Dollar

	"HKD": {}, // Hong Kong Dollar
	"HNL": {}, // Lempira
	"HTG": {}, // Gourde
	"HUF": {}, // Forint

	"IDR": {}, // Rupiah
	"ILS": {}, // New Israeli Sheqel
	"INR": {}, // Indian Rupee
	"IQD": {}, // Iraqi Dinar
	"IRR": {}, // Iranian Rial
	"ISK": {}, // Iceland Krona

	"JMD": {}, // Jamaican Dollar
	"JOD": {}, // Jordanian Dinar
	"JPY": {}, // Yen

	"KES": {}, // Kenyan Shilling
	"KGS": {}, // Som
	"KHR": {}, // Riel
	"KMF": {}, // Comorian Franc
	"KPW": {}, // North Korean Won
	"KRW": {}, // Won
	"KWD": {}, // Kuwaiti Dinar
	"KYD": {}, // Cayman Islands Dollar
	"KZT": {}, // Tenge

	"LAK": {}, // Lao Kip
	"LBP": {}, // Lebanese Pound
	"LKR": {}, // Sri Lanka Rupee
	"LRD": {}, // Liberian Dollar
	"LSL": {}, // Loti
	"LYD": {}, // Libyan Dinar

	"MAD": {}, // Moroccan Dirham
	"MDL": {}, // Moldovan Leu
	"MGA": {}, // Malagasy Ariary
	"MKD": {}, // Denar
	"MMK": {}, // Kyat
	"MNT": {}, // Tugrik
	"MOP": {}, // Pataca
	"MRU": {}, // Ouguiya
	"MUR": {}, // Mauritius Rupee
	"MVR": {}, // Rufiyaa
	"MWK": {}, // Malawi Kwacha
	"MXN": {}, // Mexican Peso
	"MXV": {}, // Mexican Unidad de Inversion (UDI)
	"MYR": {}, // Malaysian Ringgit
	"MZN": {}, // Mozambique Metical

	"NAD": {}, // Namibia Dollar
	"NGN": {}, // Naira
	"NIO": {}, // Cordoba Oro
	"NOK": {}, // Norwegian Krone
	"NPR": {}, // Nepalese Rupee
	"NZD": {}, // New Zealand Dollar

	"OMR": {}, // Rial Omani

	"PAB": {}, // Balboa
	"PEN": {}, // Sol
	"PGK": {}, // Kina
	"PHP": {}, // Philippine Peso
	"PKR": {}, // Pakistan Rupee
	"PLN": {}, // Zloty
	"PYG": {}, // Guarani

	"QAR": {}, // Qatari Rial

	"RON": {}, // Romanian Leu
	"RSD": {}, // Serbian Dinar
	"RUB": {}, // Russian Ruble
	"RWF": {}, // Rwanda Franc

	"SAR": {}, // Saudi Riyal
	"SBD": {}, // Solomon Islands Dollar
	"SCR": {}, // Seychelles Rupee
	"SDG": {}, // Sudanese Pound
	"SEK": {}, // Swedish Krona
	"SGD": {}, // Singapore Dollar
	"SHP": {}, // Saint Helena Pound
	"SLE": {}, // Leone
	"SOS": {}, // Somali Shilling
	"SRD": {}, // Surinam Dollar
	"SSP": {}, // South Sudanese Pound
	"STN": {}, // Dobra
	"SVC": {}, // El Salvador Colon
	"SYP": {}, // Syrian Pound
	"SZL": {}, // Lilangeni

	"THB": {}, // Baht
	"TJS": {}, // Somoni
	"TMT": {}, // Turkmenistan New Manat
	"TND": {}, // Tunisian Dinar
	"TOP": {}, // Pa'anga
	"TRY": {}, // Turkish Lira
	"TTD": {}, // Trinidad and Tobago Dollar
	"TWD": {}, // New Taiwan Dollar
	"TZS": {}, // Tanzanian Shilling

	"UAH": {}, // Hryvnia
	"UGX": {}, // Uganda Shilling
	"USD": {}, // US Dollar
	"USN": {}, // US Dollar (Next day)
	"UYI": {}, // Uruguay Peso en Unidades Indexadas (UI)
	"UYU": {}, // Peso Uruguayo
	"UYW": {}, // Unidad Previsional
	"UZS": {}, // Uzbekistan Sum

	"VED": {}, // Bolívar Soberano (digital)
	"VES": {}, // Bolívar Soberano
	"VND": {}, // Dong
	"VUV": {}, // Vatu

	"WST": {}, // Tala

	"XAD": {}, // Arab Accounting Dinar
	"XAF": {}, // CFA Franc BEAC
	"XAG": {}, // Silver
	"XAU": {}, // Gold
	"XBA": {}, // Bond Markets Unit European Composite Unit (EURCO)
	"XBB": {}, // Bond Markets Unit European Monetary Unit (E.M.U.-6)
	"XBC": {}, // Bond Markets Unit European Unit of Account 9 (E.U.A.-9)
	"XBD": {}, // Bond Markets Unit European Unit of Account 17 (E.U.A.-17)
	"XCD": {}, // East Caribbean Dollar
	"XCG": {}, // Caribbean Guilder
	"XDR": {}, // SDR (Special Drawing Right)
	"XOF": {}, // CFA Franc BCEAO
	"XPD": {}, // Palladium
	"XPF": {}, // CFP Franc
	"XPT": {}, // Platinum
	"XSU": {}, // Sucre
	"XTS": {}, // Code reserved for testing purposes
	"XUA": {}, // ADB Unit of Account
	"XXX": {}, // No currency involved

	"YER": {}, // Yemeni Rial

	"ZAR": {}, // Rand
	"ZMW": {}, // Zambian Kwacha
	"ZWG": {}, // Zimbabwe Gold
}

// ValidCurrency reports whether code is an active ISO 4217 alphabetic code. The comparison is case-insensitive; callers store strings.ToUpper(code).
func ValidCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	upper := true
	for i := 0; i < 3; i++ {
		c := code[i]
		if c < 'A' || c > 'Z' {
			upper = false
			break
		}
	}
	if upper {
		_, ok := currencies[code]
		return ok
	}
	// Slow path: fold ASCII lower case into a stack buffer. Any byte that is
	// not an ASCII letter (digits, spaces, multi-byte UTF-8) cannot match.
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := code[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return false
		}
		b[i] = c
	}
	_, ok := currencies[string(b[:])] // no allocation: the compiler elides the conversion
	return ok
}
