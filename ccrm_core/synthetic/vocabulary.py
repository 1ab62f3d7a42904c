"""Vocabularies for the synthetic company (`ccrm_core.synthetic.sample`): names, nicknames, places.

Kept as compact whitespace-separated strings so the generator stays readable. Everything here is
data, not logic; the generator indexes these tuples with integer codes and builds strings only at
the end. Lists are ordered roughly by frequency (the generator draws names with Zipf-like
weights that fall with the position in the list).
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = tuple(
    """
    James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
    Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty
    Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
    Michelle Kenneth Carol George Amanda Kevin Dorothy Brian Melissa Edward Deborah Ronald Stephanie
    Timothy Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas
    Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon
    Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra Frank Rachel Patrick
    Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose
    Julie Adam Olivia Nathan Joyce Henry Virginia Douglas Victoria Zachary Kelly Peter Lauren
    Kyle Christina Ethan Joan Walter Evelyn Noah Judith Jeremy Megan Christian Andrea Keith Cheryl
    Roger Hannah Terry Jacqueline Gerald Martha Harold Gloria Sean Teresa Austin Ann Carl Sara
    Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice Jordan Jean Bryan Abigail Billy
    Alice Joe Judy Bruce Sophia Gabriel Grace Logan Denise Albert Amber Willie Doris Alan Marilyn
    Juan Danielle Wayne Beverly Elijah Isabella Randy Theresa Roy Diana Vincent Natalie Ralph
    Brittany Eugene Charlotte Russell Marie Bobby Kayla Mason Alexis Philip Lori Louis Alexandra
    Harry Tiffany Howard Chloe Fred Ava Leonard Mia Mateo Lucy Theodore Eleanor Oliver Zoe Liam
    Layla Lucas Nora Caleb Hazel Isaac Aurora Owen Stella Wyatt Violet Hunter Claire Connor Leah
    Miles Audrey Elliot Ellie Julian Quinn Levi Maya Ezra Naomi Silas Ruby Jasper Ivy Felix Jade
    Hugo Iris Oscar Rose Adrian Sadie Declan Clara Graham Lydia Reid Vivian Spencer Eliza Tristan
    Josephine Wesley Cora Marcus Molly Colin Piper Dominic Tessa Malcolm Rosa Omar Yasmin Rafael
    Camila Diego Valentina Carlos Lucia Miguel Elena Luis Sofia Andres Gabriela Priya Anika Rohan
    Arjun Aisha Fatima Hamza Yusuf Mei Wei Hiroshi Yuki Kenji Sakura Min Jin Thanh Linh Kwame
    Amara Chidi Ngozi Tariq Leila Farah Sven Ingrid Lars Astrid Klaus Heike Jurgen Petra Wolfgang
    Ursula Johannes Francis Stefan Sabine Tobias Katrin Matthias Anja Florian Julia Lukas Lena Jonas Leonie Niklas
    Marie-Claire Jean-Luc Francois Camille Antoine Manon Mathieu Solene Guillaume Amelie Nicolas
    Juliette Pierre Margaux Baptiste Elodie Thibault Aurelie Alastair Fiona Hamish Isla Callum
    Morag Rhys Cerys Siobhan Niamh Ciaran Aoife Bridget Rowan Imogen Rupert Harriet Giles Poppy
    Frederick Nathaniel Cathy Melanie Bernard Gwen Dale Lorraine Glenn Vera Neil Wendy Troy Yvonne
    """.split()
)

LAST_NAMES: tuple[str, ...] = tuple(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
    Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
    Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
    Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
    Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
    Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
    Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
    Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
    Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
    Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
    Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
    Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter
    Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
    Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
    Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
    Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson
    Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena
    Richards Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada
    Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison
    Franklin Carlson Austin Dominguez Carr Lawson Jacobs OBrien Lynch Singh Vega Bishop Montgomery
    Oliver Jensen Harvey Williamson Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le
    McCoy Garrett Burton Fuller Wang Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks
    Padilla Day Walsh Bowman Schultz Luna Fowler Mejia Davidson Acosta Brewer May Holland Juarez
    Newman Pearson Curtis Cortez Douglas Schneider Joseph Barrett Navarro Figueroa Keller Avila
    Wade Molina Stanley Hopkins Campos Barnett Bates Chambers Caldwell Beck Lambert Miranda Byrd
    Craig Ayala Lowe Frazier Powers Neal Leonard Gregory Carrillo Sutton Fleming Rhodes Shelton
    Schwartz Norris Jennings Watts Duran Walters Cohen McDaniel Moran Parks Steele Vaughn Becker
    Holt Deleon Barker Terry Hale Leon Hail Benson Haynes Horton Miles Lyons Pham Graves Bush
    Thornton Wolfe Warner Cabrera McKinney Mann Zimmerman Dawson Lara Fletcher Page McCarthy Love
    Robles Cervantes Solis Erickson Reeves Chang Klein Salinas Fuentes Baldwin Daniel Simon Velasquez
    Hardy Higgins Aguirre Lin Cummings Chandler Sharp Barber Bowen Ochoa Dennis Robbins Liu Ramsey
    Francis Griffith Paul Blair OConnor Cardenas Pacheco Cross Calderon Quinn Moss Swanson Chan
    Rivas Khan Rodgers Serrano Fitzgerald Rosales Stevenson Christensen Manning Gill Curry McLaughlin
    Harmon McGee Gross Doyle Garner Newton Burgess Reese Walton Blake Trujillo Adkins Brady
    Goodman Roman Webster Goodwin Fischer Huang Potter Delacruz Montoya Todd Wu Hines Mullins
    Castaneda Malone Cannon Tate Mack Sherman Hubbard Hodges Zhang Guerra Wolf Valencia Saunders
    Franco Rowe Gallagher Farmer Hammond Hampton Townsend Ingram Wise Gallegos Clarke Barton
    Mueller Schmitt Schneiderhan Fischbach Wagenknecht Becker-Lutz Hofmann Koch Richter Klein-Bauer
    Wolff Schroeder Neumann Schwarz Braun Hofer Kruger Hartmann Lange Werner Krause Lehmann Kohler
    Dubois Durand Lefebvre Moreau Laurent Michel Garnier Faure Rousseau Blanc Guerin Muller Henri
    Roussel Nicolas Perrin Morin Mathieu Clement Gauthier Dumont Lopes Fontaine Chevalier Robin
    MacLeod Campbell-Ross Fraser Stewart-Hay Murray-Kerr Buchanan Drummond Lindsay Kerr Ogilvy
    Thorne Ashworth Pemberton Whitfield Fairbanks Holloway Radcliffe Sinclair Kingsley Langley
    """.split()
)

# Nicknames and short forms a person may give in a second source system (first name -> forms).
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Betty"),
    "James": ("Jim", "Jimmy"),
    "John": ("Johnny",),
    "Michael": ("Mike", "Mikey"),
    "Richard": ("Rick", "Dick", "Rich"),
    "Thomas": ("Tom", "Tommy"),
    "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony",),
    "Joseph": ("Joe", "Joey"),
    "Edward": ("Ed", "Eddie", "Ted"),
    "Jennifer": ("Jen", "Jenny"),
    "Katherine": ("Kate", "Katie", "Kathy"),
    "Catherine": ("Cat", "Cate"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Patricia": ("Pat", "Patty", "Trish"),
    "Susan": ("Sue", "Susie"),
    "Rebecca": ("Becky", "Becca"),
    "Jessica": ("Jess", "Jessie"),
    "Samantha": ("Sammy",),
    "Alexander": ("Alex", "Xander"),
    "Alexandra": ("Lexi", "Sasha"),
    "Benjamin": ("Ben", "Benny"),
    "Jonathan": ("Jon", "Jonny"),
    "Nicholas": ("Nick", "Nicky"),
    "Andrew": ("Andy", "Drew"),
    "Steven": ("Steve",),
    "Stephen": ("Steve",),
    "Timothy": ("Tim", "Timmy"),
    "Kenneth": ("Ken", "Kenny"),
    "Gregory": ("Greg",),
    "Patrick": ("Paddy",),
    "Peter": ("Pete",),
    "Douglas": ("Doug",),
    "Victoria": ("Vicky", "Tori"),
    "Christina": ("Tina", "Chrissy"),
    "Christine": ("Chris",),
    "Deborah": ("Debbie", "Deb"),
    "Debra": ("Debbie",),
    "Kimberly": ("Kim",),
    "Abigail": ("Abby",),
    "Jacqueline": ("Jackie",),
    "Cynthia": ("Cindy",),
    "Theodore": ("Theo", "Teddy"),
    "Frederick": ("Fred", "Freddie"),
    "Zachary": ("Zach", "Zack"),
    "Nathaniel": ("Nate", "Nat"),
    "Nathan": ("Nate",),
    "Raymond": ("Ray",),
    "Lawrence": ("Larry",),
    "Ronald": ("Ron", "Ronnie"),
    "Donald": ("Don", "Donnie"),
    "Gerald": ("Jerry",),
    "Albert": ("Al", "Bert"),
    "Dorothy": ("Dot", "Dottie"),
    "Josephine": ("Josie", "Jo"),
    "Stephanie": ("Steph",),
    "Jeffrey": ("Jeff",),
    "Joshua": ("Josh",),
    "Samuel": ("Sam", "Sammy"),
    "David": ("Dave", "Davey"),
    "Jacob": ("Jake",),
    "Gabriel": ("Gabe",),
    "Vincent": ("Vince", "Vinny"),
    "Leonard": ("Len", "Lenny"),
    "Eleanor": ("Nora", "Elle"),
    "Melissa": ("Missy", "Mel"),
    "Pamela": ("Pam",),
    "Barbara": ("Barb", "Babs"),
    "Judith": ("Judy",),
    "Theresa": ("Tess", "Terri"),
    "Teresa": ("Tess",),
    "Frances": ("Fran", "Frankie"),
    "Francis": ("Frank",),
    "Matthias": ("Matze",),
    "Wolfgang": ("Wolf",),
    "Johannes": ("Hannes",),
    "Kathleen": ("Kathy", "Kat"),
    "Harold": ("Harry", "Hal"),
    "Walter": ("Walt",),
    "Philip": ("Phil",),
    "Russell": ("Russ",),
    "Eugene": ("Gene",),
    "Isabella": ("Bella", "Izzy"),
    "Olivia": ("Liv", "Livvy"),
    "Madison": ("Maddie",),
    "Natalie": ("Nat",),
    "Virginia": ("Ginny",),
    "Gwen": ("Gwendolyn",),
    "Valentina": ("Vale",),
    "Guillaume": ("Guigui",),
    "Antoine": ("Toine",),
    "Alastair": ("Ali",),
    "Callum": ("Cal",),
}

# Country codes (ISO 3166-1 alpha-2) in generator order, with the share of persons.
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "CA")
COUNTRY_SHARES: tuple[float, ...] = (0.80, 0.06, 0.05, 0.04, 0.05)

# Cities: (country, city, region, postal prefix, phone area code or "").
# Postal prefix: US = 3-digit ZIP prefix, GB = outward codes (space separated), DE = 2-digit
# Leitzone, FR = 3-digit prefix, CA = forward sortation areas (space separated). Area codes are
# real NANP codes for US/CA; GB/DE/FR persons get mobile numbers (see sample.py).
CITIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("US", "New York", "NY", "100", "212"),
    ("US", "Brooklyn", "NY", "112", "718"),
    ("US", "Los Angeles", "CA", "900", "213"),
    ("US", "Santa Monica", "CA", "904", "310"),
    ("US", "Chicago", "IL", "606", "312"),
    ("US", "Houston", "TX", "770", "713"),
    ("US", "Phoenix", "AZ", "850", "602"),
    ("US", "Philadelphia", "PA", "191", "215"),
    ("US", "San Antonio", "TX", "782", "210"),
    ("US", "San Diego", "CA", "921", "619"),
    ("US", "Dallas", "TX", "752", "214"),
    ("US", "Austin", "TX", "787", "512"),
    ("US", "Jacksonville", "FL", "322", "904"),
    ("US", "San Jose", "CA", "951", "408"),
    ("US", "Columbus", "OH", "432", "614"),
    ("US", "Charlotte", "NC", "282", "704"),
    ("US", "Indianapolis", "IN", "462", "317"),
    ("US", "San Francisco", "CA", "941", "415"),
    ("US", "Seattle", "WA", "981", "206"),
    ("US", "Denver", "CO", "802", "303"),
    ("US", "Washington", "DC", "200", "202"),
    ("US", "Boston", "MA", "021", "617"),
    ("US", "Nashville", "TN", "372", "615"),
    ("US", "Detroit", "MI", "482", "313"),
    ("US", "Portland", "OR", "972", "503"),
    ("US", "Las Vegas", "NV", "891", "702"),
    ("US", "Memphis", "TN", "381", "901"),
    ("US", "Louisville", "KY", "402", "502"),
    ("US", "Baltimore", "MD", "212", "410"),
    ("US", "Milwaukee", "WI", "532", "414"),
    ("US", "Albuquerque", "NM", "871", "505"),
    ("US", "Tucson", "AZ", "857", "520"),
    ("US", "Fresno", "CA", "937", "559"),
    ("US", "Sacramento", "CA", "958", "916"),
    ("US", "Kansas City", "MO", "641", "816"),
    ("US", "Atlanta", "GA", "303", "404"),
    ("US", "Miami", "FL", "331", "305"),
    ("US", "Raleigh", "NC", "276", "919"),
    ("US", "Omaha", "NE", "681", "402"),
    ("US", "Minneapolis", "MN", "554", "612"),
    ("US", "Tulsa", "OK", "741", "918"),
    ("US", "Cleveland", "OH", "441", "216"),
    ("US", "Tampa", "FL", "336", "813"),
    ("US", "New Orleans", "LA", "701", "504"),
    ("US", "Pittsburgh", "PA", "152", "412"),
    ("US", "Cincinnati", "OH", "452", "513"),
    ("US", "St. Louis", "MO", "631", "314"),
    ("US", "Orlando", "FL", "328", "407"),
    ("US", "Salt Lake City", "UT", "841", "801"),
    ("US", "Richmond", "VA", "232", "804"),
    ("US", "Buffalo", "NY", "142", "716"),
    ("US", "Madison", "WI", "537", "608"),
    ("US", "Boise", "ID", "837", "208"),
    ("US", "Des Moines", "IA", "503", "515"),
    ("US", "Hartford", "CT", "061", "860"),
    ("US", "Providence", "RI", "029", "401"),
    ("US", "Anchorage", "AK", "995", "907"),
    ("US", "Honolulu", "HI", "968", "808"),
    ("US", "Burlington", "VT", "054", "802"),
    ("US", "Portland", "ME", "041", "207"),
    ("US", "Charleston", "SC", "294", "843"),
    ("US", "Birmingham", "AL", "352", "205"),
    ("US", "Little Rock", "AR", "722", "501"),
    ("US", "Oklahoma City", "OK", "731", "405"),
    ("US", "Oakland", "CA", "946", "510"),
    ("US", "Newark", "NJ", "071", "973"),
    ("US", "Spokane", "WA", "992", "509"),
    ("US", "Savannah", "GA", "314", "912"),
    ("GB", "London", "England", "SW1A EC1A W1D N1 SE1 E14 NW3 WC2H SW11 E8", ""),
    ("GB", "Manchester", "England", "M1 M4 M14 M20", ""),
    ("GB", "Birmingham", "England", "B1 B5 B15 B29", ""),
    ("GB", "Leeds", "England", "LS1 LS6 LS8", ""),
    ("GB", "Glasgow", "Scotland", "G1 G12 G41", ""),
    ("GB", "Edinburgh", "Scotland", "EH1 EH3 EH9", ""),
    ("GB", "Bristol", "England", "BS1 BS6 BS8", ""),
    ("GB", "Liverpool", "England", "L1 L8 L18", ""),
    ("GB", "Cardiff", "Wales", "CF10 CF24", ""),
    ("GB", "Belfast", "Northern Ireland", "BT1 BT7 BT9", ""),
    ("GB", "Newcastle upon Tyne", "England", "NE1 NE2", ""),
    ("GB", "Sheffield", "England", "S1 S10 S11", ""),
    ("GB", "Cambridge", "England", "CB1 CB2 CB4", ""),
    ("GB", "Oxford", "England", "OX1 OX2 OX4", ""),
    ("DE", "Berlin", "Berlin", "10 12 13", ""),
    ("DE", "Hamburg", "Hamburg", "20 22", ""),
    ("DE", "München", "Bayern", "80 81", ""),
    ("DE", "Köln", "Nordrhein-Westfalen", "50 51", ""),
    ("DE", "Frankfurt am Main", "Hessen", "60", ""),
    ("DE", "Stuttgart", "Baden-Württemberg", "70", ""),
    ("DE", "Düsseldorf", "Nordrhein-Westfalen", "40", ""),
    ("DE", "Leipzig", "Sachsen", "04", ""),
    ("DE", "Dresden", "Sachsen", "01", ""),
    ("DE", "Hannover", "Niedersachsen", "30", ""),
    ("DE", "Nürnberg", "Bayern", "90", ""),
    ("DE", "Bremen", "Bremen", "28", ""),
    ("FR", "Paris", "Île-de-France", "750", ""),
    ("FR", "Lyon", "Auvergne-Rhône-Alpes", "690", ""),
    ("FR", "Marseille", "Provence-Alpes-Côte d'Azur", "130", ""),
    ("FR", "Toulouse", "Occitanie", "310", ""),
    ("FR", "Nice", "Provence-Alpes-Côte d'Azur", "060", ""),
    ("FR", "Nantes", "Pays de la Loire", "440", ""),
    ("FR", "Strasbourg", "Grand Est", "670", ""),
    ("FR", "Montpellier", "Occitanie", "340", ""),
    ("FR", "Bordeaux", "Nouvelle-Aquitaine", "330", ""),
    ("FR", "Lille", "Hauts-de-France", "590", ""),
    ("CA", "Toronto", "ON", "M5V M4C M6G M5A", "416"),
    ("CA", "Montreal", "QC", "H2X H3B H2T", "514"),
    ("CA", "Vancouver", "BC", "V6B V5K V6K", "604"),
    ("CA", "Calgary", "AB", "T2P T3A", "403"),
    ("CA", "Ottawa", "ON", "K1P K2B K1S", "613"),
    ("CA", "Edmonton", "AB", "T5J T6E", "780"),
    ("CA", "Winnipeg", "MB", "R3C R2M", "204"),
    ("CA", "Quebec City", "QC", "G1R G1K", "418"),
    ("CA", "Hamilton", "ON", "L8P L9A", "905"),
    ("CA", "Halifax", "NS", "B3H B3K", "902"),
)

# Street names per country; the generator adds house numbers and suffixes.
STREETS_EN: tuple[str, ...] = tuple(
    """
    Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Sunset Lincoln Jackson Church Highland
    Ridge Meadow River Forest Spring Willow Chestnut Walnut Madison Franklin Jefferson Adams Center
    Mill Union Cherry Birch Aspen Hickory Magnolia Laurel Poplar Sycamore Dogwood Harbor Bay Valley
    Prospect Grove Orchard Summit Broad Market Water Front Bridge School Academy College Liberty
    Independence Victoria Albert Queen King Station Green Chapel Manor Windsor Cambridge Oxford
    Kingsway Greenwood Fairview Riverside Lakeview Hillcrest Brookside Woodland Cypress Juniper
    """.split()
)
STREET_SUFFIXES_US: tuple[str, ...] = ("St", "Ave", "Rd", "Blvd", "Dr", "Ln", "Ct", "Way", "Pl")
STREET_SUFFIXES_GB: tuple[str, ...] = ("Road", "Street", "Lane", "Avenue", "Close", "Gardens")
STREETS_DE: tuple[str, ...] = tuple(
    """
    Hauptstraße Bahnhofstraße Gartenstraße Schillerstraße Goethestraße Lindenstraße Kirchweg
    Schulstraße Waldweg Dorfstraße Bergstraße Ringstraße Mozartstraße Beethovenweg Rosenweg
    Birkenweg Feldstraße Marktplatz Friedrichstraße Kastanienallee
    """.split()
)
STREETS_FR: tuple[str, ...] = (
    "rue de la République",
    "avenue Victor Hugo",
    "rue Jean Jaurès",
    "boulevard Pasteur",
    "rue du Général de Gaulle",
    "rue de la Gare",
    "avenue Gambetta",
    "rue des Lilas",
    "chemin du Moulin",
    "boulevard Voltaire",
    "rue de Verdun",
    "place de l'Église",
    "rue Nationale",
    "avenue des Champs",
)

# Email domains per country (index into COUNTRIES) with weights; gmail.com first (dot-insensitive).
EMAIL_DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (
        ("gmail.com", 0.42),
        ("yahoo.com", 0.16),
        ("outlook.com", 0.10),
        ("hotmail.com", 0.09),
        ("icloud.com", 0.09),
        ("aol.com", 0.04),
        ("comcast.net", 0.05),
        ("proton.me", 0.05),
    ),
    "GB": (
        ("gmail.com", 0.40),
        ("yahoo.co.uk", 0.15),
        ("hotmail.co.uk", 0.15),
        ("btinternet.com", 0.15),
        ("outlook.com", 0.15),
    ),
    "DE": (
        ("gmail.com", 0.30),
        ("gmx.de", 0.25),
        ("web.de", 0.25),
        ("t-online.de", 0.20),
    ),
    "FR": (
        ("gmail.com", 0.35),
        ("orange.fr", 0.25),
        ("free.fr", 0.20),
        ("laposte.net", 0.20),
    ),
    "CA": (
        ("gmail.com", 0.45),
        ("yahoo.ca", 0.15),
        ("hotmail.com", 0.20),
        ("rogers.com", 0.10),
        ("shaw.ca", 0.10),
    ),
}

# Offers and themes for campaigns (None = brand campaign without an offer).
OFFERS: tuple[str, ...] = (
    "20% off apparel",
    "free shipping",
    "$10 off $50",
    "buy one get one beauty",
    "double loyalty points",
    "15% off electronics",
    "home refresh 25% off",
    "outdoor gear sale",
    "grocery bundle deal",
    "new season launch",
    "members early access",
    "clearance up to 50% off",
)
CAMPAIGN_THEMES: tuple[str, ...] = (
    "Spring",
    "Summer",
    "Back to School",
    "Autumn",
    "Holiday",
    "New Year",
    "Always On",
    "Brand",
)
