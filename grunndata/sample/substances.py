"""Real ATC codes with Norwegian substance names, the forms and strengths sold in Norway.

The table drives the generator: brand names, VirkestoffMedStyrke, Byttegruppe names,
interactions (through the pharmacological tags) and reimbursement groups all derive from it.
Trade names are the well-known originals; generics are named "<substance> <maker>".
"""

from __future__ import annotations

from dataclasses import dataclass

# ATC|Norwegian name|English name|Reseptgruppe|popularity 1-5|interaction tags|trade names|forms
# forms: form:strength,strength;form:... (strength "10 mg", "5 mg/ml", "25 mikrog/time")
# tags: ser serotonergic, qt QT-prolonging, i3a4/s3a4 CYP3A4 inhibitor/substrate, ind inducer,
# i2d6/s2d6, ak anticoagulant, pl platelet inhibitor, nsaid, k raises potassium, diur loop/thiazide,
# cns CNS depressant, opi opioid, bz benzodiazepine, lit lithium, mtx methotrexate, chel chelating
# cation, kin absorption reduced by cations, dig digoxin, pgpi/pgps P-gp inhibitor/substrate,
# hypo glucose lowering, bp blood-pressure lowering, immun narrow-margin immunosuppressant.
_SINGLE = """
A02BC01|Omeprazol|Omeprazole|C|4|i2c19|Losec|enterokaps:10 mg,20 mg,40 mg;enterotab:10 mg,20 mg
A02BC02|Pantoprazol|Pantoprazole|C|4||Somac|enterotab:20 mg,40 mg;pulvinj:40 mg
A02BC03|Lansoprazol|Lansoprazole|C|3||Lanzo|enterokaps:15 mg,30 mg;smeltetab:15 mg,30 mg
A02BC05|Esomeprazol|Esomeprazole|C|4||Nexium|enterotab:20 mg,40 mg;granmikst:10 mg
A02BA03|Famotidin|Famotidine|C|1||Pepcid|tab:20 mg,40 mg
A03BB01|Butylskopolamin|Butylscopolamine|C|2||Buscopan|tab:10 mg;inj:20 mg/ml
A03FA01|Metoklopramid|Metoclopramide|C|3|qt|Afipran|tab:10 mg;inj:5 mg/ml;stikkp:20 mg
A04AA01|Ondansetron|Ondansetron|C|3|qt,ser|Zofran|tab:4 mg,8 mg;smeltetab:4 mg,8 mg;inj:2 mg/ml
A06AB02|Bisakodyl|Bisacodyl|F|2||Dulcolax|enterotab:5 mg;stikkp:10 mg
A06AB08|Natriumpikosulfat|Sodium picosulfate|F|2||Laxoberal|drap:7.5 mg/ml
A06AD11|Laktulose|Lactulose|F|2||Duphalac|mikst:670 mg/ml
A07AA02|Nystatin|Nystatin|C|1||Mycostatin|mikst:100000 IE/ml
A07DA03|Loperamid|Loperamide|F|2||Imodium|kaps:2 mg;smeltetab:2 mg
A07EA06|Budesonid|Budesonide|C|2|s3a4|Entocort|depotkaps:3 mg;enterokaps:3 mg
A07EC02|Mesalazin|Mesalazine|C|3||Asacol,Pentasa|enterotab:400 mg,800 mg;depottab:500 mg,1 g;stikkp:1 g
A10AB04|Insulin lispro|Insulin lispro|C|2|hypo|Humalog|inj:100 E/ml,200 E/ml
A10AB05|Insulin aspart|Insulin aspart|C|2|hypo|NovoRapid|inj:100 E/ml
A10AC01|Insulin (human)|Insulin (human)|C|1|hypo|Insulatard|inj:100 IE/ml
A10AE04|Insulin glargin|Insulin glargine|C|2|hypo|Lantus,Toujeo|inj:100 E/ml,300 E/ml
A10AE05|Insulin detemir|Insulin detemir|C|1|hypo|Levemir|inj:100 E/ml
A10AE06|Insulin degludek|Insulin degludec|C|1|hypo|Tresiba|inj:100 E/ml,200 E/ml
A10BA02|Metformin|Metformin|C|4|hypo|Glucophage|tab:500 mg,850 mg,1000 mg;depottab:500 mg,750 mg,1000 mg
A10BB12|Glimepirid|Glimepiride|C|2|hypo|Amaryl|tab:1 mg,2 mg,3 mg,4 mg
A10BH01|Sitagliptin|Sitagliptin|C|3|hypo|Januvia|tab:25 mg,50 mg,100 mg
A10BH05|Linagliptin|Linagliptin|C|1|hypo|Trajenta|tab:5 mg
A10BJ02|Liraglutid|Liraglutide|C|1|hypo|Victoza,Saxenda|inj:6 mg/ml
A10BJ06|Semaglutid|Semaglutide|C|2|hypo|Ozempic,Wegovy,Rybelsus|inj:1.34 mg/ml,2.68 mg/ml;tab:3 mg,7 mg,14 mg
A10BK01|Dapagliflozin|Dapagliflozin|C|2|hypo|Forxiga|tab:5 mg,10 mg
A10BK03|Empagliflozin|Empagliflozin|C|2|hypo|Jardiance|tab:10 mg,25 mg
A11CC05|Kolekalsiferol|Colecalciferol|F|2||Divisun,Nycoplus D-vitamin|tab:20 mikrog,25 mikrog;drap:20000 IE/ml
A12AA04|Kalsiumkarbonat|Calcium carbonate|F|2|chel|Calcigran|tyggetab:500 mg,1000 mg
A12BA01|Kaliumklorid|Potassium chloride|C|2|k|Kaleorid|depottab:750 mg,1 g;mikst:75 mg/ml
B01AA03|Warfarin|Warfarin|C|2|ak|Marevan|tab:2.5 mg
B01AB04|Dalteparin|Dalteparin|C|2|ak|Fragmin|inj:12500 IE/ml,25000 IE/ml
B01AB05|Enoksaparin|Enoxaparin|C|3|ak|Klexane,Inhixa|inj:100 mg/ml
B01AC04|Klopidogrel|Clopidogrel|C|3|pl|Plavix|tab:75 mg
B01AC06|Acetylsalisylsyre|Acetylsalicylic acid|C|3|pl|Albyl-E|enterotab:75 mg,160 mg
B01AC24|Tikagrelor|Ticagrelor|C|2|pl,s3a4|Brilique|tab:60 mg,90 mg
B01AE07|Dabigatraneteksilat|Dabigatran etexilate|C|2|ak,pgps|Pradaxa|kaps:75 mg,110 mg,150 mg
B01AF01|Rivaroksaban|Rivaroxaban|C|4|ak,s3a4,pgps|Xarelto|tab:2.5 mg,10 mg,15 mg,20 mg;granmikst:1 mg/ml
B01AF02|Apiksaban|Apixaban|C|4|ak,s3a4|Eliquis|tab:2.5 mg,5 mg
B01AF03|Edoksaban|Edoxaban|C|1|ak,pgps|Lixiana|tab:15 mg,30 mg,60 mg
B02AA02|Traneksamsyre|Tranexamic acid|C|2||Cyklokapron|tab:500 mg;inj:100 mg/ml
B02BA01|Fytomenadion|Phytomenadione|C|1||Konakion|inj:10 mg/ml
B03AA07|Jern(II)sulfat|Ferrous sulfate|F|2|chel|Duroferon|depottab:100 mg
B03BA01|Cyanokobalamin|Cyanocobalamin|C|2||Behepan|inj:1 mg/ml;tab:1 mg
B03BB01|Folsyre|Folic acid|C|2||Folsyre NAF|tab:1 mg,5 mg
C01AA05|Digoksin|Digoxin|C|1|dig,pgps|Digoxin BioPhausia|tab:62.5 mikrog,250 mikrog;inj:0.25 mg/ml
C01BD01|Amiodaron|Amiodarone|C|1|qt,pgpi,i2d6,i3a4|Cordarone|tab:100 mg,200 mg;inj:50 mg/ml
C01DA02|Glyseroltrinitrat|Glyceryl trinitrate|C|2||Nitroglycerin,Nitrolingual|sublingvaltab:0.5 mg
C01DA14|Isosorbidmononitrat|Isosorbide mononitrate|C|2||Imdur|depottab:30 mg,60 mg
C03AA03|Hydroklortiazid|Hydrochlorothiazide|C|2|diur,bp|Esidrex|tab:25 mg
C03BA11|Indapamid|Indapamide|C|1|diur,bp|Natrilix|depottab:1.5 mg
C03CA01|Furosemid|Furosemide|C|3|diur,bp|Diural,Lasix|tab:20 mg,40 mg,500 mg;inj:10 mg/ml
C03CA02|Bumetanid|Bumetanide|C|1|diur,bp|Burinex|tab:1 mg
C03DA01|Spironolakton|Spironolactone|C|2|k,bp|Spirix|tab:25 mg,50 mg,100 mg
C03DA04|Eplerenon|Eplerenone|C|1|k,bp,s3a4|Inspra|tab:25 mg,50 mg
C07AA05|Propranolol|Propranolol|C|2|bp,s2d6|Pranolol,Inderal|tab:10 mg,20 mg,40 mg
C07AB02|Metoprolol|Metoprolol|C|4|bp,s2d6|Selo-Zok|depottab:25 mg,50 mg,100 mg,200 mg
C07AB03|Atenolol|Atenolol|C|1|bp|Tenormin|tab:25 mg,50 mg,100 mg
C07AB07|Bisoprolol|Bisoprolol|C|2|bp|Emconcor|tab:2.5 mg,5 mg,10 mg
C07AB12|Nebivolol|Nebivolol|C|1|bp,s2d6|Nebilet|tab:5 mg
C07AG02|Karvedilol|Carvedilol|C|2|bp,s2d6|Kredex|tab:3.125 mg,6.25 mg,12.5 mg,25 mg
C08CA01|Amlodipin|Amlodipine|C|5|bp,s3a4|Norvasc|tab:5 mg,10 mg
C08CA02|Felodipin|Felodipine|C|2|bp,s3a4|Plendil|depottab:2.5 mg,5 mg,10 mg
C08CA05|Nifedipin|Nifedipine|C|1|bp,s3a4|Adalat Oros|depottab:30 mg,60 mg
C08CA13|Lerkanidipin|Lercanidipine|C|2|bp,s3a4|Zanidip|tab:10 mg,20 mg
C08DA01|Verapamil|Verapamil|C|1|bp,i3a4,pgpi|Isoptin|tab:40 mg,80 mg;depottab:120 mg,240 mg
C08DB01|Diltiazem|Diltiazem|C|1|bp,i3a4|Cardizem Uno|depotkaps:120 mg,180 mg,240 mg,300 mg
C09AA02|Enalapril|Enalapril|C|3|bp,k|Renitec|tab:5 mg,10 mg,20 mg
C09AA03|Lisinopril|Lisinopril|C|2|bp,k|Zestril|tab:5 mg,10 mg,20 mg
C09AA05|Ramipril|Ramipril|C|3|bp,k|Triatec|tab:1.25 mg,2.5 mg,5 mg,10 mg;kaps:2.5 mg,5 mg,10 mg
C09CA01|Losartan|Losartan|C|5|bp,k|Cozaar|tab:12.5 mg,25 mg,50 mg,100 mg
C09CA03|Valsartan|Valsartan|C|3|bp,k|Diovan|tab:40 mg,80 mg,160 mg,320 mg
C09CA04|Irbesartan|Irbesartan|C|2|bp,k|Aprovel|tab:75 mg,150 mg,300 mg
C09CA06|Kandesartan|Candesartan|C|5|bp,k|Atacand,Amias|tab:4 mg,8 mg,16 mg,32 mg
C09CA07|Telmisartan|Telmisartan|C|2|bp,k|Micardis|tab:20 mg,40 mg,80 mg
C10AA01|Simvastatin|Simvastatin|C|4|s3a4|Zocor|tab:10 mg,20 mg,40 mg,80 mg
C10AA03|Pravastatin|Pravastatin|C|2||Pravachol|tab:10 mg,20 mg,40 mg
C10AA05|Atorvastatin|Atorvastatin|C|5|s3a4|Lipitor|tab:10 mg,20 mg,40 mg,80 mg
C10AA07|Rosuvastatin|Rosuvastatin|C|4||Crestor|tab:5 mg,10 mg,20 mg,40 mg
C10AX09|Ezetimib|Ezetimibe|C|3||Ezetrol|tab:10 mg
D01AE15|Terbinafin|Terbinafine|F|2|i2d6|Lamisil|krem:10 mg/g;gel:10 mg/g
D05AX02|Kalsipotriol|Calcipotriol|C|1||Daivonex|salve:50 mikrog/g;krem:50 mikrog/g
D06AX09|Mupirocin|Mupirocin|C|1||Bactroban|salve:20 mg/g;krem:20 mg/g
D06BB03|Aciklovir|Aciclovir|F|2||Zovirax|krem:50 mg/g
D07AA02|Hydrokortison|Hydrocortisone|F|2||Hydrokortison Orifarm,Mildison|krem:10 mg/g;salve:10 mg/g
D07AB02|Hydrokortisonbutyrat|Hydrocortisone butyrate|C|2||Locoid|krem:1 mg/g;salve:1 mg/g
D07AC01|Betametason|Betamethasone|C|2||Betnovat|krem:1 mg/g;salve:1 mg/g
D07AC13|Mometason|Mometasone|C|3||Elocon|krem:1 mg/g;salve:1 mg/g
D07AD01|Klobetasol|Clobetasol|C|2||Dermovat|krem:0.5 mg/g;salve:0.5 mg/g
D10BA01|Isotretinoin|Isotretinoin|C|2||Roaccutan,Isotretinoin Orifarm|kaps:5 mg,10 mg,20 mg
D11AH01|Takrolimus|Tacrolimus|C|1||Protopic|salve:0.3 mg/g,1 mg/g
G03AC03|Levonorgestrel|Levonorgestrel|C|2||Postinor,Mirena|tab:1.5 mg
G03AC09|Desogestrel|Desogestrel|C|3||Cerazette|tab:75 mikrog
G03CA03|Østradiol|Estradiol|C|3||Estradot,Progynova,Vagifem|tab:1 mg,2 mg;plaster:25 mikrog/24 timer,37.5 mikrog/24 timer,50 mikrog/24 timer,75 mikrog/24 timer,100 mikrog/24 timer;gel:0.6 mg/g
G03DA04|Progesteron|Progesterone|C|1||Utrogestan|kaps:100 mg,200 mg
G03XC01|Raloksifen|Raloxifene|C|1||Evista|tab:60 mg
G04BD07|Tolterodin|Tolterodine|C|1|s2d6|Detrusitol|depotkaps:2 mg,4 mg
G04BD08|Solifenacin|Solifenacin|C|2|s3a4|Vesicare|tab:5 mg,10 mg
G04BE03|Sildenafil|Sildenafil|C|3|s3a4|Viagra,Revatio|tab:25 mg,50 mg,100 mg;smeltetab:50 mg,100 mg
G04BE08|Tadalafil|Tadalafil|C|3|s3a4|Cialis|tab:2.5 mg,5 mg,10 mg,20 mg
G04CA02|Tamsulosin|Tamsulosin|C|3|bp|Omnic|depotkaps:0.4 mg;depottab:0.4 mg
G04CB01|Finasterid|Finasteride|C|2||Proscar|tab:5 mg
G04CB02|Dutasterid|Dutasteride|C|1||Avodart|kaps:0.5 mg
H01BA02|Desmopressin|Desmopressin|C|1||Minirin|tab:0.1 mg,0.2 mg;smeltetab:60 mikrog,120 mikrog,240 mikrog;nesespray:10 mikrog/dose
H02AB02|Deksametason|Dexamethasone|C|2|s3a4|Fortecortin,Dexamethasone Krka|tab:1 mg,4 mg;inj:4 mg/ml
H02AB06|Prednisolon|Prednisolone|C|3||Prednisolon|tab:5 mg,20 mg
H02AB07|Prednison|Prednisone|C|1||Prednison Alternova|tab:5 mg,20 mg
H02AB09|Hydrokortison|Hydrocortisone|C|1||Solu-Cortef,Hydrocortone|tab:10 mg,20 mg;pulvinj:100 mg
H03AA01|Levotyroksinnatrium|Levothyroxine sodium|C|3|kin|Levaxin,Euthyrox|tab:25 mikrog,50 mikrog,75 mikrog,100 mikrog,125 mikrog,150 mikrog
H03BB02|Tiamazol|Thiamazole|C|1||Thacapzol|tab:5 mg
H05AA02|Teriparatid|Teriparatide|C|1||Forsteo,Movymia|inj:250 mikrog/ml
J01AA02|Doksysyklin|Doxycycline|C|3|kin|Doxylin,Vibramycin|tab:100 mg;disperg:100 mg
J01AA07|Tetrasyklin|Tetracycline|C|1|kin|Tetracyklin|tab:250 mg
J01CA04|Amoksicillin|Amoxicillin|C|3||Imacillin|kaps:250 mg,500 mg;tab:750 mg;disperg:750 mg;pulvmikst:50 mg/ml
J01CE02|Fenoksymetylpenicillin|Phenoxymethylpenicillin|C|4||Apocillin,Weifapenin|tab:660 mg,1 g;pulvmikst:50 mg/ml
J01CF01|Dikloksacillin|Dicloxacillin|C|3||Diclocil|kaps:250 mg,500 mg
J01CF05|Flukloksacillin|Flucloxacillin|C|1||Fluclox|kaps:500 mg
J01DB01|Cefaleksin|Cefalexin|C|2||Keflex|kaps:250 mg,500 mg;pulvmikst:50 mg/ml
J01DD04|Ceftriakson|Ceftriaxone|C|2||Rocephalin|pulvinj:1 g,2 g
J01EA01|Trimetoprim|Trimethoprim|C|3|k|Trimetoprim Orifarm|tab:100 mg,160 mg,300 mg;mikst:10 mg/ml
J01FA01|Erytromycin|Erythromycin|C|2|i3a4,qt|Ery-Max,Abboticin|enterokaps:250 mg;tab:250 mg,500 mg
J01FA09|Klaritromycin|Clarithromycin|C|3|i3a4,qt,pgpi|Klacid|tab:250 mg,500 mg;depottab:500 mg;granmikst:25 mg/ml,50 mg/ml
J01FA10|Azitromycin|Azithromycin|C|3|qt|Azitromax,Zithromax|tab:250 mg,500 mg;pulvmikst:40 mg/ml
J01MA01|Ofloksacin|Ofloxacin|C|1|kin,qt|Tarivid|tab:200 mg
J01MA02|Ciprofloksacin|Ciprofloxacin|C|3|kin,qt,i1a2|Ciproxin|tab:250 mg,500 mg,750 mg;infkons:2 mg/ml
J01MA12|Levofloksacin|Levofloxacin|C|2|kin,qt|Tavanic|tab:250 mg,500 mg;infkons:5 mg/ml
J01XA01|Vankomycin|Vancomycin|C|1||Vancomycin Mylan|pulvinj:500 mg,1 g;kaps:125 mg,250 mg
J01XE01|Nitrofurantoin|Nitrofurantoin|C|2||Furadantin|tab:50 mg
J01XX05|Metenamin|Methenamine|C|2||Hiprex|tab:1 g
J02AC01|Flukonazol|Fluconazole|C|3|i3a4,qt,i2c9|Diflucan|kaps:50 mg,150 mg,200 mg;pulvmikst:40 mg/ml
J02AC03|Vorikonazol|Voriconazole|C|1|i3a4,qt|Vfend|tab:50 mg,200 mg;pulvinj:200 mg
J04AB02|Rifampicin|Rifampicin|C|1|ind|Rimactan|kaps:150 mg,300 mg
J05AB01|Aciklovir|Aciclovir|C|3||Zovirax|tab:200 mg,400 mg,800 mg;pulvinj:250 mg
J05AB11|Valaciklovir|Valaciclovir|C|3||Valtrex|tab:250 mg,500 mg,1000 mg
J05AF07|Tenofovirdisoproksil|Tenofovir disoproxil|C|1||Viread|tab:245 mg
J05AF08|Adefovirdipivoksil|Adefovir dipivoxil|C|1||Hepsera|tab:10 mg
J05AF10|Entekavir|Entecavir|C|1||Baraclude|tab:0.5 mg,1 mg
J05AH02|Oseltamivir|Oseltamivir|C|1||Tamiflu|kaps:30 mg,45 mg,75 mg
J07BB02|Influensavirus, inaktivert, splittvirus eller overflateantigen|Influenza, inactivated, split virus or surface antigen|C|1||Influvac,Vaxigrip|injsusp:15 mikrog/dose
L01BA01|Metotreksat|Methotrexate|C|2|mtx|Methotrexate Orion,Metoject|tab:2.5 mg,10 mg;inj:50 mg/ml
L01BC02|Fluorouracil|Fluorouracil|C|1||Fluorouracil Accord|inj:50 mg/ml
L01BC06|Kapecitabin|Capecitabine|C|1||Xeloda|tab:150 mg,500 mg
L01CD01|Paklitaksel|Paclitaxel|C|1|s3a4|Paclitaxel Accord|infkons:6 mg/ml
L01EA01|Imatinib|Imatinib|C|1|s3a4,i3a4|Glivec|tab:100 mg,400 mg
L01FA01|Rituksimab|Rituximab|C|1||MabThera,Truxima|infkons:10 mg/ml
L01FD01|Trastuzumab|Trastuzumab|C|1||Herceptin|pulvinj:150 mg;inj:600 mg/5 ml
L01FF01|Nivolumab|Nivolumab|C|1||Opdivo|infkons:10 mg/ml
L01FF02|Pembrolizumab|Pembrolizumab|C|1||Keytruda|infkons:25 mg/ml
L02AE02|Leuprorelin|Leuprorelin|C|1||Procren,Eligard|injsusp:3.75 mg,11.25 mg
L02BA01|Tamoksifen|Tamoxifen|C|2|s2d6|Nolvadex,Tamoxifen Mylan|tab:10 mg,20 mg
L02BB03|Bikalutamid|Bicalutamide|C|2||Casodex|tab:50 mg,150 mg
L02BG03|Anastrozol|Anastrozole|C|2||Arimidex|tab:1 mg
L02BG04|Letrozol|Letrozole|C|2||Femar|tab:2.5 mg
L02BG06|Eksemestan|Exemestane|C|1||Aromasin|tab:25 mg
L04AA06|Mykofenolsyre|Mycophenolic acid|C|2||CellCept,Myfortic|tab:500 mg;kaps:250 mg;enterotab:180 mg,360 mg
L04AA18|Everolimus|Everolimus|C|1|s3a4,immun|Certican,Afinitor|tab:0.25 mg,0.5 mg,0.75 mg,1 mg;disperg:0.1 mg,0.25 mg
L04AB01|Etanercept|Etanercept|C|2||Enbrel,Benepali|inj:25 mg,50 mg
L04AB02|Infliksimab|Infliximab|C|2||Remicade,Remsima|pulvinj:100 mg
L04AB04|Adalimumab|Adalimumab|C|3||Humira,Hyrimoz,Amgevita|inj:40 mg,80 mg
L04AC05|Ustekinumab|Ustekinumab|C|1||Stelara|inj:45 mg,90 mg
L04AD01|Ciklosporin|Ciclosporin|C|2|s3a4,pgps,immun,k|Sandimmun Neoral|kaps:10 mg,25 mg,50 mg,100 mg;mikst:100 mg/ml
L04AD02|Takrolimus|Tacrolimus|C|2|s3a4,immun,qt,k|Prograf,Advagraf|kaps:0.5 mg,1 mg,5 mg;depotkaps:0.5 mg,1 mg,3 mg,5 mg
L04AX01|Azatioprin|Azathioprine|C|2||Imurel|tab:25 mg,50 mg
L04AX03|Metotreksat|Methotrexate|C|2|mtx|Metoject,Nordimet|inj:50 mg/ml
M01AB05|Diklofenak|Diclofenac|C|3|nsaid|Voltaren,Cataflam|enterotab:25 mg,50 mg;tab:50 mg;depottab:75 mg,100 mg;stikkp:50 mg,100 mg
M01AC06|Meloksikam|Meloxicam|C|1|nsaid|Mobic|tab:7.5 mg,15 mg
M01AE01|Ibuprofen|Ibuprofen|F|5|nsaid|Ibux,Brufen|tab:200 mg,400 mg,600 mg,800 mg;mikst:20 mg/ml;brusetab:400 mg;depottab:800 mg
M01AE02|Naproksen|Naproxen|C|3|nsaid|Naprosyn,Pronaxen|tab:250 mg,500 mg;enterotab:250 mg,500 mg;mikst:25 mg/ml
M01AH01|Celekoksib|Celecoxib|C|2|nsaid|Celebra|kaps:100 mg,200 mg
M01AH05|Etorikoksib|Etoricoxib|C|2|nsaid|Arcoxia|tab:30 mg,60 mg,90 mg,120 mg
M02AA15|Diklofenak|Diclofenac|F|2||Voltaren Gel|gel:11.6 mg/g,23.2 mg/g
M03BX01|Baklofen|Baclofen|C|2|cns|Lioresal|tab:10 mg,25 mg
M04AA01|Allopurinol|Allopurinol|C|3||Zyloric|tab:100 mg,300 mg
M04AC01|Kolkisin|Colchicine|C|1|s3a4,pgps|Kolkisin NAF|tab:0.5 mg
M05BA04|Alendronsyre|Alendronic acid|C|3|kin|Fosamax|tab:70 mg
M05BA07|Risedronsyre|Risedronic acid|C|1|kin|Optinate|tab:35 mg
M05BX04|Denosumab|Denosumab|C|2||Prolia,Xgeva|inj:60 mg/ml,120 mg/1.7 ml
N01AB08|Sevofluran|Sevoflurane|C|1||Sevofluran Baxter,Sevorane|inhdamp:100 % w/v
N01BB01|Bupivakain|Bupivacaine|C|1||Marcain|inj:2.5 mg/ml,5 mg/ml
N01BB02|Lidokain|Lidocaine|C|2||Xylocain|inj:10 mg/ml,20 mg/ml;gel:20 mg/ml
N02AA01|Morfin|Morphine|A|2|opi,cns|Dolcontin,Morfin Orifarm|tab:10 mg,20 mg;depottab:5 mg,10 mg,30 mg,60 mg,100 mg;inj:10 mg/ml,20 mg/ml;mikst:1 mg/ml
N02AA05|Oksykodon|Oxycodone|A|3|opi,cns,s3a4|OxyNorm,OxyContin|kaps:5 mg,10 mg,20 mg;depottab:5 mg,10 mg,20 mg,40 mg,80 mg;inj:10 mg/ml;mikst:1 mg/ml
N02AB03|Fentanyl|Fentanyl|A|2|opi,cns,s3a4,ser|Durogesic,Instanyl,Abstral|plaster:12 mikrog/time,25 mikrog/time,50 mikrog/time,75 mikrog/time,100 mikrog/time;nesespray:50 mikrog/dose;sublingvaltab:100 mikrog,200 mikrog
N02AE01|Buprenorfin|Buprenorphine|A|2|opi,cns,s3a4|Norspan,Temgesic|plaster:5 mikrog/time,10 mikrog/time,20 mikrog/time;sublingvaltab:0.2 mg,0.4 mg
N02AX02|Tramadol|Tramadol|B|3|opi,cns,ser,s2d6|Nobligan,Tramagetic|kaps:50 mg;depottab:100 mg,150 mg,200 mg;drap:100 mg/ml
N02AX06|Tapentadol|Tapentadol|A|2|opi,cns,ser|Palexia|depottab:50 mg,100 mg,150 mg,200 mg,250 mg;tab:50 mg
N02BA01|Acetylsalisylsyre|Acetylsalicylic acid|F|2|nsaid,pl|Dispril,Aspirin|tab:500 mg;brusetab:500 mg
N02BE01|Paracetamol|Paracetamol|F|5||Paracet,Panodil,Pinex|tab:500 mg,1 g;brusetab:500 mg;stikkp:60 mg,125 mg,250 mg,500 mg,1 g;mikst:24 mg/ml;depottab:1 g
N02CC01|Sumatriptan|Sumatriptan|C|3|ser|Imigran|tab:50 mg,100 mg;nesespray:10 mg/dose,20 mg/dose;inj:6 mg/0.5 ml
N02CC03|Zolmitriptan|Zolmitriptan|C|2|ser|Zomig|tab:2.5 mg,5 mg;smeltetab:2.5 mg,5 mg;nesespray:5 mg/dose
N02CC04|Rizatriptan|Rizatriptan|C|3|ser|Maxalt|tab:10 mg;smeltetab:10 mg
N02CC06|Eletriptan|Eletriptan|C|2|ser,s3a4|Relpax|tab:20 mg,40 mg
N03AA02|Fenobarbital|Phenobarbital|A|1|ind,cns|Fenemal|tab:15 mg,100 mg
N03AE01|Klonazepam|Clonazepam|A|2|bz,cns|Rivotril|tab:0.5 mg,2 mg;drap:2.5 mg/ml
N03AF01|Karbamazepin|Carbamazepine|C|2|ind|Tegretol,Trimonil|tab:200 mg;depottab:200 mg,300 mg,400 mg;mikst:20 mg/ml
N03AF02|Okskarbazepin|Oxcarbazepine|C|1|ind|Trileptal|tab:150 mg,300 mg,600 mg;mikst:60 mg/ml
N03AG01|Valproinsyre|Valproic acid|C|2||Orfiril,Depakine|enterotab:150 mg,300 mg,600 mg;depottab:300 mg,500 mg;mikst:60 mg/ml
N03AX09|Lamotrigin|Lamotrigine|C|3||Lamictal|tab:25 mg,50 mg,100 mg,200 mg;disperg:2 mg,5 mg,25 mg,100 mg
N03AX11|Topiramat|Topiramate|C|2||Topimax|tab:25 mg,50 mg,100 mg,200 mg
N03AX12|Gabapentin|Gabapentin|C|3|cns|Neurontin|kaps:100 mg,300 mg,400 mg;tab:600 mg,800 mg
N03AX14|Levetiracetam|Levetiracetam|C|3||Keppra|tab:250 mg,500 mg,750 mg,1000 mg;mikst:100 mg/ml;infkons:100 mg/ml
N03AX16|Pregabalin|Pregabalin|B|4|cns|Lyrica|kaps:25 mg,50 mg,75 mg,100 mg,150 mg,200 mg,225 mg,300 mg
N04BC04|Ropinirol|Ropinirole|C|1|s1a2|Requip|tab:0.25 mg,1 mg,2 mg,5 mg;depottab:2 mg,4 mg,8 mg
N04BC05|Pramipeksol|Pramipexole|C|2||Sifrol|tab:0.088 mg,0.18 mg,0.35 mg,0.7 mg;depottab:0.26 mg,0.52 mg,1.05 mg,2.1 mg
N04BD02|Rasagilin|Rasagiline|C|1|ser|Azilect|tab:1 mg
N05AA02|Levomepromazin|Levomepromazine|C|1|cns,qt|Nozinan|tab:5 mg,25 mg;inj:25 mg/ml
N05AD01|Haloperidol|Haloperidol|C|1|qt,cns,s2d6|Haldol|tab:1 mg,5 mg;inj:5 mg/ml;drap:2 mg/ml
N05AF05|Zuklopentiksol|Zuclopenthixol|C|1|qt,cns|Cisordinol|tab:2 mg,10 mg,25 mg;inj:200 mg/ml
N05AH03|Olanzapin|Olanzapine|C|3|cns,s1a2|Zyprexa|tab:2.5 mg,5 mg,7.5 mg,10 mg,15 mg,20 mg;smeltetab:5 mg,10 mg,15 mg,20 mg
N05AH04|Quetiapin|Quetiapine|C|3|cns,qt,s3a4|Seroquel|tab:25 mg,100 mg,200 mg,300 mg;depottab:50 mg,150 mg,200 mg,300 mg,400 mg
N05AN01|Litium|Lithium|C|1|lit|Lithionit|depottab:42 mg
N05AX08|Risperidon|Risperidone|C|3|cns,qt,s2d6|Risperdal|tab:0.5 mg,1 mg,2 mg,3 mg,4 mg;smeltetab:0.5 mg,1 mg,2 mg;mikst:1 mg/ml
N05AX12|Aripiprazol|Aripiprazole|C|3|s2d6,s3a4|Abilify|tab:5 mg,10 mg,15 mg,30 mg;smeltetab:10 mg,15 mg;mikst:1 mg/ml
N05AX13|Paliperidon|Paliperidone|C|1|qt|Invega|depottab:3 mg,6 mg,9 mg
N05BA01|Diazepam|Diazepam|B|3|bz,cns|Vival,Stesolid|tab:2 mg,5 mg,10 mg;rektalv:5 mg,10 mg;inj:5 mg/ml
N05BA04|Oksazepam|Oxazepam|B|3|bz,cns|Sobril|tab:10 mg,15 mg,25 mg
N05BA12|Alprazolam|Alprazolam|B|2|bz,cns,s3a4|Xanor|tab:0.25 mg,0.5 mg,1 mg;depottab:0.5 mg,1 mg,2 mg
N05BB01|Hydroksyzin|Hydroxyzine|C|2|cns,qt|Atarax|tab:10 mg,25 mg
N05CD02|Nitrazepam|Nitrazepam|B|1|bz,cns|Mogadon,Apodorm|tab:5 mg
N05CD08|Midazolam|Midazolam|A|1|bz,cns,s3a4|Buccolam,Dormicum|inj:1 mg/ml,5 mg/ml
N05CF01|Zopiklon|Zopiclone|B|4|cns,s3a4|Imovane|tab:5 mg,7.5 mg
N05CF02|Zolpidem|Zolpidem|B|2|cns,s3a4|Stilnoct|tab:5 mg,10 mg
N05CH01|Melatonin|Melatonin|C|3|cns|Circadin,Slenyto|depottab:1 mg,2 mg,5 mg;tab:3 mg
N06AA04|Klomipramin|Clomipramine|C|1|ser,qt,s2d6|Anafranil|tab:10 mg,25 mg
N06AA09|Amitriptylin|Amitriptyline|C|3|ser,qt,s2d6,cns|Sarotex|tab:10 mg,25 mg,50 mg
N06AA10|Nortriptylin|Nortriptyline|C|1|qt,s2d6|Noritren|tab:10 mg,25 mg
N06AB03|Fluoksetin|Fluoxetine|C|2|ser,i2d6|Fontex|kaps:20 mg;disperg:20 mg
N06AB04|Citalopram|Citalopram|C|3|ser,qt|Cipramil|tab:10 mg,20 mg,30 mg,40 mg
N06AB05|Paroksetin|Paroxetine|C|2|ser,i2d6|Seroxat|tab:20 mg,30 mg
N06AB06|Sertralin|Sertraline|C|4|ser|Zoloft|tab:25 mg,50 mg,100 mg
N06AB10|Escitalopram|Escitalopram|C|4|ser,qt|Cipralex|tab:5 mg,10 mg,15 mg,20 mg;drap:20 mg/ml
N06AG02|Moklobemid|Moclobemide|C|1|ser|Aurorix|tab:150 mg,300 mg
N06AX03|Mianserin|Mianserin|C|2|cns|Tolvon|tab:10 mg,30 mg
N06AX11|Mirtazapin|Mirtazapine|C|4|cns,ser|Remeron|tab:15 mg,30 mg,45 mg;smeltetab:15 mg,30 mg,45 mg
N06AX12|Bupropion|Bupropion|C|2|i2d6|Wellbutrin Retard|depottab:150 mg,300 mg
N06AX16|Venlafaksin|Venlafaxine|C|3|ser|Efexor Depot|depotkaps:37.5 mg,75 mg,150 mg,225 mg
N06AX21|Duloksetin|Duloxetine|C|3|ser|Cymbalta|enterokaps:30 mg,60 mg
N06AX22|Agomelatin|Agomelatine|C|1|s1a2|Valdoxan|tab:25 mg
N06AX26|Vortioksetin|Vortioxetine|C|2|ser|Brintellix|tab:5 mg,10 mg,20 mg
N06BA04|Metylfenidat|Methylphenidate|A|4||Ritalin,Concerta,Medikinet|tab:5 mg,10 mg,20 mg;depottab:18 mg,27 mg,36 mg,54 mg;depotkaps:10 mg,20 mg,30 mg,40 mg
N06BA09|Atomoksetin|Atomoxetine|C|2|s2d6|Strattera|kaps:10 mg,18 mg,25 mg,40 mg,60 mg,80 mg,100 mg
N06BA12|Lisdeksamfetamin|Lisdexamfetamine|A|2||Elvanse|kaps:20 mg,30 mg,40 mg,50 mg,60 mg,70 mg;tyggetab:20 mg,30 mg,40 mg,50 mg,60 mg,70 mg
N06DA02|Donepezil|Donepezil|C|2|qt,s2d6|Aricept|tab:5 mg,10 mg;smeltetab:5 mg,10 mg
N06DA03|Rivastigmin|Rivastigmine|C|2||Exelon|plaster:4.6 mg/24 timer,9.5 mg/24 timer,13.3 mg/24 timer;kaps:1.5 mg,3 mg,4.5 mg,6 mg
N06DA04|Galantamin|Galantamine|C|1||Reminyl|depotkaps:8 mg,16 mg,24 mg
N06DX01|Memantin|Memantine|C|2||Ebixa|tab:10 mg,20 mg
N07BA01|Nikotin|Nicotine|F|3||Nicorette,Nicotinell|tyggegummi:2 mg,4 mg;plaster:10 mg/16 timer,15 mg/16 timer,25 mg/16 timer;sublingvaltab:2 mg
N07BA03|Vareniklin|Varenicline|C|1||Champix|tab:0.5 mg,1 mg
N07BB01|Disulfiram|Disulfiram|C|1|i2e1|Antabus|brusetab:200 mg,400 mg
N07BC02|Metadon|Methadone|A|2|opi,cns,qt,s3a4|Metadon DnE|mikst:1 mg/ml;tab:5 mg,10 mg,20 mg
N07XX02|Riluzol|Riluzole|C|1|s1a2|Rilutek|tab:50 mg
P01AB01|Metronidazol|Metronidazole|C|2|i2c9|Flagyl|tab:250 mg,400 mg,500 mg;stikkp:500 mg,1 g
P01BA02|Hydroksyklorokin|Hydroxychloroquine|C|2|qt|Plaquenil|tab:200 mg
P02CA01|Mebendazol|Mebendazole|F|2||Vermox|tab:100 mg;mikst:20 mg/ml
R01AA07|Xylometazolin|Xylometazoline|F|3||Otrivin,Zymelin|nesespray:0.5 mg/ml,1 mg/ml
R01AD09|Mometason|Mometasone|C|3||Nasonex|nesespray:50 mikrog/dose
R01AD12|Flutikasonfuroat|Fluticasone furoate|C|2|s3a4|Avamys|nesespray:27.5 mikrog/dose
R03AC02|Salbutamol|Salbutamol|C|3||Ventoline,Airomir,Buventol|inhaer:0.1 mg/dose;inhpulv:0.1 mg/dose,0.2 mg/dose;neb:1 mg/ml,2 mg/ml
R03AC03|Terbutalin|Terbutaline|C|2||Bricanyl|inhpulv:0.25 mg/dose,0.5 mg/dose
R03AC12|Salmeterol|Salmeterol|C|1|s3a4|Serevent|inhpulv:50 mikrog/dose;inhaer:25 mikrog/dose
R03AC13|Formoterol|Formoterol|C|2||Oxis,Foradil|inhpulv:4.5 mikrog/dose,9 mikrog/dose,12 mikrog/dose
R03BA02|Budesonid|Budesonide|C|3||Pulmicort|inhpulv:100 mikrog/dose,200 mikrog/dose,400 mikrog/dose;neb:0.25 mg/ml,0.5 mg/ml
R03BA05|Flutikason|Fluticasone|C|2|s3a4|Flutide|inhaer:50 mikrog/dose,125 mikrog/dose,250 mikrog/dose;inhpulv:100 mikrog/dose,250 mikrog/dose,500 mikrog/dose
R03BB04|Tiotropiumbromid|Tiotropium bromide|C|2||Spiriva|inhpulv:18 mikrog/dose;inhaer:2.5 mikrog/dose
R03DC03|Montelukast|Montelukast|C|3||Singulair|tab:10 mg;tyggetab:4 mg,5 mg;granmikst:4 mg
R05DA04|Kodein|Codeine|B|2|opi,cns,s2d6|Kodein Actavis|tab:25 mg
R06AD02|Prometazin|Promethazine|C|2|cns,qt|Phenergan|tab:10 mg,25 mg;mikst:1 mg/ml
R06AE07|Cetirizin|Cetirizine|F|4||Zyrtec,Reactine|tab:10 mg;mikst:1 mg/ml
R06AE09|Levocetirizin|Levocetirizine|C|2||Xyzal|tab:5 mg
R06AX13|Loratadin|Loratadine|F|3||Clarityn|tab:10 mg;mikst:1 mg/ml
R06AX26|Feksofenadin|Fexofenadine|C|2|pgps|Telfast|tab:120 mg,180 mg
R06AX27|Desloratadin|Desloratadine|C|3||Aerius|tab:5 mg;smeltetab:2.5 mg,5 mg;mikst:0.5 mg/ml
S01AA01|Kloramfenikol|Chloramphenicol|C|2||Kloramfenikol Santen|oyedr:5 mg/ml
S01ED01|Timolol|Timolol|C|2|bp,s2d6|Timosan,Blocadren|oyedr:2.5 mg/ml,5 mg/ml;gel:1 mg/g
S01EE01|Latanoprost|Latanoprost|C|3||Xalatan,Monoprost|oyedr:50 mikrog/ml
V03AB15|Nalokson|Naloxone|C|2||Nyxoid,Naloxone B. Braun|nesespray:1.8 mg/dose;inj:0.4 mg/ml
V03AE02|Sevelamer|Sevelamer|C|1|chel|Renvela|tab:800 mg;pulvmikst:2.4 g
V08CA08|Gadobensyre|Gadobenic acid|C|1||MultiHance|inj:334 mg/ml
"""

# ATC|Norwegian name|English|Reseptgruppe|popularity|tags|trade names|components|forms
# components: one per strength part, '+'-separated: a single's ATC, or =Norwegian:English
_COMBINATIONS = """
A06AD65|Makrogol, kombinasjoner|Macrogol, combinations|F|3||Movicol,Laxabon|=Makrogol 3350:Macrogol 3350|pulvmikst:13.1 g
A10BD07|Metformin og sitagliptin|Metformin and sitagliptin|C|2|hypo|Janumet|A10BA02+A10BH01|tab:850 mg+50 mg,1000 mg+50 mg
A10BD11|Metformin og linagliptin|Metformin and linagliptin|C|1|hypo|Jentadueto|A10BA02+A10BH05|tab:850 mg+2.5 mg,1000 mg+2.5 mg
C09DA01|Losartan og diuretika|Losartan and diuretics|C|3|bp,k|Cozaar Comp|C09CA01+C03AA03|tab:50 mg+12.5 mg,100 mg+12.5 mg,100 mg+25 mg
C09DA06|Kandesartan og diuretika|Candesartan and diuretics|C|3|bp,k|Atacand Plus|C09CA06+C03AA03|tab:8 mg+12.5 mg,16 mg+12.5 mg,32 mg+12.5 mg,32 mg+25 mg
C09DB01|Valsartan og amlodipin|Valsartan and amlodipine|C|2|bp,k|Exforge|C09CA03+C08CA01|tab:80 mg+5 mg,160 mg+5 mg,160 mg+10 mg
C09DX04|Valsartan og sakubitril|Valsartan and sacubitril|C|2|bp,k|Entresto|C09CA03+=Sakubitril:Sacubitril|tab:26 mg+24 mg,51 mg+49 mg,103 mg+97 mg
C10BA02|Simvastatin og ezetimib|Simvastatin and ezetimibe|C|2|s3a4|Inegy|C10AA01+C10AX09|tab:20 mg+10 mg,40 mg+10 mg
G03AA07|Levonorgestrel og etinyløstradiol|Levonorgestrel and ethinylestradiol|C|3||Microgynon,Loette|G03AC03+=Etinyløstradiol:Ethinylestradiol|tab:150 mikrog+30 mikrog,100 mikrog+20 mikrog
J01CR02|Amoksicillin og betalaktamasehemmer|Amoxicillin and beta-lactamase inhibitor|C|2||Bioclavid,Augmentin|J01CA04+=Klavulansyre:Clavulanic acid|tab:500 mg+125 mg,875 mg+125 mg
J01EE01|Sulfametoksazol og trimetoprim|Sulfamethoxazole and trimethoprim|C|2|k|Bactrim,Eusaprim|=Sulfametoksazol:Sulfamethoxazole+J01EA01|tab:400 mg+80 mg,800 mg+160 mg;mikst:40 mg/ml+8 mg/ml
J05AR03|Tenofovirdisoproksil og emtricitabin|Tenofovir disoproxil and emtricitabine|C|1||Truvada|J05AF07+=Emtricitabin:Emtricitabine|tab:245 mg+200 mg
N02AA55|Oksykodon, kombinasjoner|Oxycodone, combinations|A|1|opi,cns,s3a4|Targiniq|N02AA05+V03AB15|depottab:5 mg+2.5 mg,10 mg+5 mg,20 mg+10 mg,40 mg+20 mg
N02AJ06|Kodein og paracetamol|Codeine and paracetamol|B|4|opi,cns,s2d6|Paralgin forte,Pinex Forte,Paralgin major|R05DA04+N02BE01|tab:30 mg+400 mg,60 mg+500 mg;stikkp:30 mg+400 mg;brusetab:30 mg+500 mg
N02AJ13|Tramadol og paracetamol|Tramadol and paracetamol|B|2|opi,cns,ser|Zaldiar|N02AX02+N02BE01|tab:37.5 mg+325 mg
N04BA02|Levodopa og dekarboksylasehemmer|Levodopa and decarboxylase inhibitor|C|2||Madopar,Sinemet|=Levodopa:Levodopa+=Benserazid:Benserazide|tab:100 mg+25 mg,200 mg+50 mg;depotkaps:100 mg+25 mg
N07BC51|Buprenorfin, kombinasjoner|Buprenorphine, combinations|A|1|opi,cns,s3a4|Suboxone|N02AE01+V03AB15|sublingvaltab:2 mg+0.5 mg,8 mg+2 mg
R03AK06|Salmeterol og flutikason|Salmeterol and fluticasone|C|3|s3a4|Seretide,Airflusal|R03AC12+R03BA05|inhpulv:50 mikrog+100 mikrog,50 mikrog+250 mikrog,50 mikrog+500 mikrog;inhaer:25 mikrog+125 mikrog
R03AK07|Formoterol og budesonid|Formoterol and budesonide|C|3||Symbicort,Bufomix|R03AC13+R03BA02|inhpulv:4.5 mikrog+80 mikrog,4.5 mikrog+160 mikrog,9 mikrog+320 mikrog
"""


@dataclass(frozen=True, slots=True)
class Strength:
    """One component strength: V and U of Styrke, optional StyrkeNevner, and its display text."""

    value: float
    unit: str
    per_value: float | None
    per_unit: str | None

    @property
    def display(self) -> str:
        text = f"{fmt_number(self.value).replace('.', ',')} {self.unit}"
        if self.per_unit is not None:
            per = "" if self.per_value == 1 else fmt_number(self.per_value or 1).replace(".", ",") + " "
            text += f"/{per}{self.per_unit}"
        return text


@dataclass(frozen=True, slots=True)
class Substance:
    """One ATC code with products: a single substance or a fixed combination."""

    atc: str
    name: str
    english: str
    reseptgruppe: str
    popularity: int
    tags: frozenset[str]
    trade_names: tuple[str, ...]
    forms: tuple[tuple[str, tuple[tuple[Strength, ...], ...]], ...]  # form -> strengths per component
    components: tuple[str, ...]  # component ATCs for combinations, () for a single substance

    @property
    def is_combination(self) -> bool:
        return bool(self.components) or any(len(s) > 1 for _, strengths in self.forms for s in strengths)


def fmt_number(value: float) -> str:
    """Shortest decimal text of a number: 10 not 10.0, 0.25 stays 0.25."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_strength(text: str) -> Strength:
    """Parse "5 mg/ml", "25 mikrog/time", "120 mg/1.7 ml", "100 % w/v" into a Strength."""
    amount, _, rest = text.strip().partition(" ")
    if "/" in rest and not rest.startswith("%"):
        unit, _, per = rest.partition("/")
        per = per.strip()
        per_value = 1.0
        head, _, tail = per.partition(" ")
        if tail and head.replace(".", "").isdigit():
            per_value, per = float(head), tail
        return Strength(float(amount), unit.strip(), per_value, per)
    return Strength(float(amount), rest, None, None)


def _parse_forms(spec: str) -> tuple[tuple[str, tuple[tuple[Strength, ...], ...]], ...]:
    forms = []
    for part in spec.split(";"):
        key, _, strengths = part.partition(":")
        forms.append(
            (
                key.strip(),
                tuple(tuple(parse_strength(c) for c in s.split("+")) for s in strengths.split(",")),
            )
        )
    return tuple(forms)


# More pharmacological properties by ATC prefix, added to the tags in the table above.
_CLASS_TAGS: dict[str, str] = {
    "N06AA": "achi", "G04BD": "achi", "N05AH": "achi", "A03BB": "achi", "R06AD": "achi", "N05BB": "achi",
    "N06DA": "ache brady", "C07": "brady", "C08D": "brady", "C01AA": "brady", "C01BD": "brady",
    "M01A": "nephro", "L04AD": "nephro", "J01XA": "nephro", "L01BA": "nephro", "L04AX03": "nephro",
    "C01DA": "nitrat", "G04BE": "pde5", "G03A": "hormon", "G03C": "hormon", "B01AA": "vka",
    "J01C": "inr", "J01E": "inr", "J01MA": "inr", "J01AA": "inr", "J01FA": "inr", "P01AB": "inr", "J02AC": "inr",
}  # fmt: skip


def _class_tags(atc: str) -> frozenset[str]:
    return frozenset(
        t for prefix, tags in _CLASS_TAGS.items() if atc.startswith(prefix) for t in tags.split()
    )


def _parse(table: str, combinations: bool) -> list[Substance]:
    out = []
    for line in table.strip().splitlines():
        fields = line.split("|")
        atc, name, english, resept, pop, tags, brands = fields[:7]
        components: tuple[str, ...] = ()
        if combinations:
            components = tuple(c for c in fields[7].split("+") if c)
        out.append(
            Substance(
                atc,
                name,
                english,
                resept,
                int(pop),
                frozenset(t for t in tags.split(",") if t) | _class_tags(atc),
                tuple(b for b in brands.split(",") if b),
                _parse_forms(fields[-1]),
                components,
            )
        )
    return out


REAL_SUBSTANCES: tuple[Substance, ...] = tuple(_parse(_SINGLE, False) + _parse(_COMBINATIONS, True))
"""The real substances and combinations of the table above, single substances first."""

# INN stems by ATC group, for substances derived from a real one of the same group.
_STEMS: dict[str, tuple[str, str]] = {
    "A02BC": ("prazol", "prazole"),
    "C09CA": ("sartan", "sartan"),
    "C09AA": ("pril", "pril"),
    "C07AB": ("olol", "olol"),
    "C07AA": ("olol", "olol"),
    "C08CA": ("dipin", "dipine"),
    "C10AA": ("vastatin", "vastatin"),
    "A10BH": ("gliptin", "gliptin"),
    "A10BK": ("gliflozin", "gliflozin"),
    "A10BJ": ("glutid", "glutide"),
    "J01MA": ("floksacin", "floxacin"),
    "J01AA": ("syklin", "cycline"),
    "J01CA": ("cillin", "cillin"),
    "J01CE": ("cillin", "cillin"),
    "J01CF": ("cillin", "cillin"),
    "J01DB": ("cef", "cef"),
    "J01DD": ("cef", "cef"),
    "J02AC": ("konazol", "conazole"),
    "J05AB": ("ciklovir", "ciclovir"),
    "L01EA": ("tinib", "tinib"),
    "L04AB": ("mab", "mab"),
    "L04AC": ("kinumab", "kinumab"),
    "L01FA": ("tuzumab", "tuzumab"),
    "L01FF": ("limab", "limab"),
    "A04AA": ("setron", "setron"),
    "N02CC": ("triptan", "triptan"),
    "N06AB": ("oksetin", "oxetine"),
    "N05BA": ("azepam", "azepam"),
    "N05AX": ("peridon", "peridone"),
    "N05AH": ("apin", "apine"),
    "R03DC": ("lukast", "lukast"),
    "R06AX": ("tadin", "tadine"),
    "R06AE": ("tirizin", "tirizine"),
    "B01AB": ("parin", "parin"),
    "B01AF": ("xaban", "xaban"),
    "B01AC": ("grel", "grel"),
    "M05BA": ("dronsyre", "dronic acid"),
    "M01AH": ("koksib", "coxib"),
    "M01AE": ("profen", "profen"),
    "L02BG": ("trozol", "trozole"),
    "L02BB": ("lutamid", "lutamide"),
    "D07AC": ("metason", "metasone"),
    "N06DA": ("stigmin", "stigmine"),
    "N06AA": ("triptylin", "triptyline"),
    "N03AX": ("acetam", "acetam"),
    "G04BD": ("fenacin", "fenacin"),
    "G04BE": ("afil", "afil"),
    "H02AB": ("olon", "olone"),
    "R03AC": ("terol", "terol"),
    "R03BA": ("sonid", "sonide"),
    "N02AA": ("kodon", "codone"),
}
_GENERIC_STEMS: tuple[tuple[str, str], ...] = (
    ("amin", "amine"),
    ("azol", "azole"),
    ("idin", "idine"),
    ("oksan", "oxane"),
    ("tan", "tane"),
    ("anid", "anide"),
    ("ilat", "ilate"),
    ("umin", "umine"),
    ("olin", "oline"),
    ("ekin", "ecine"),
)
_HEADS = (
    "al",
    "ben",
    "car",
    "dal",
    "ed",
    "fal",
    "gal",
    "hal",
    "il",
    "ka",
    "lev",
    "mal",
    "nal",
    "ol",
    "pal",
    "ra",
    "sal",
    "tal",
    "ul",
    "val",
    "zal",
    "bri",
    "clo",
    "dro",
    "eto",
    "flu",
    "gli",
    "lo",
    "mi",
    "ni",
    "ox",
    "pra",
    "qui",
    "ri",
    "si",
    "tri",
    "vi",
    "za",
)
_MIDS = ("", "a", "e", "i", "o", "da", "ki", "lo", "ma", "ne", "pi", "ro", "sa", "te", "vo")


def _derive(count: int) -> list[Substance]:
    """Substances shaped like real ones of the same ATC group, with invented INN-style names.

    They widen the set of (substance, form, strength) groups to the number a real delivery has
    (about 2,200 LegemiddelVirkestoff and 1,700 Byttegruppe) without inventing many new codes.
    """
    import random

    rng = random.Random("grunndata-derived-substances")
    real = [s for s in REAL_SUBSTANCES if not s.is_combination]
    used_atc = {s.atc for s in REAL_SUBSTANCES}
    used_names = {s.name for s in REAL_SUBSTANCES}
    next_number: dict[str, int] = {}
    out: list[Substance] = []
    while len(out) < count:
        template = rng.choice(real)
        group = template.atc[:5]
        number = next_number.get(group, 50)
        while f"{group}{number:02d}" in used_atc and number < 99:
            number += 1
        if number >= 99:
            continue
        next_number[group] = number + 1
        stem, english_stem = _STEMS.get(group) or rng.choice(_GENERIC_STEMS)
        head = rng.choice(_HEADS) + rng.choice(_MIDS)
        if head[-1] in "aeiou" and stem[0] in "aeiou":
            head = head[:-1]
        name = (head + stem).capitalize()
        if name in used_names:
            continue
        used_names.add(name)
        atc = f"{group}{number:02d}"
        used_atc.add(atc)
        factor = rng.choice((0.5, 1.0, 1.0, 2.0))
        forms = tuple(
            (
                key,
                tuple(
                    tuple(Strength(round(c.value * factor, 3), c.unit, c.per_value, c.per_unit) for c in st)
                    for st in strengths
                ),
            )
            for key, strengths in template.forms[: rng.randint(1, len(template.forms))]
        )
        english = (head.replace("ks", "x").replace("k", "c") + english_stem).capitalize()
        out.append(Substance(atc, name, english, template.reseptgruppe, 1, template.tags, (), forms, ()))
    return out


DERIVED_SUBSTANCES: tuple[Substance, ...] = tuple(_derive(520))

SUBSTANCES: tuple[Substance, ...] = REAL_SUBSTANCES + DERIVED_SUBSTANCES
"""Every substance with products: the real table first, then the derived ones."""

BY_ATC: dict[str, Substance] = {}
for _s in SUBSTANCES:
    BY_ATC.setdefault(_s.atc, _s)
